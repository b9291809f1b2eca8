import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';

// Node's HTTP/2 compatibility API hands the balancer request objects whose `headers` hold the
// pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) and no `Host`. Upstream requests are
// HTTP/1.1, so an h2 request gets a plain header set of its own: what is forwarded, checked and
// keyed on. The compat object keeps reading its method and path from its internal copy.

/** Whether the request arrived over HTTP/2 (compat API). */
export function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/**
 * Gives an HTTP/2 request HTTP/1.1-shaped headers: no pseudo-headers, `Host` from `:authority`
 * (RFC 9113 §8.3.1: it takes the place of Host). False when the request also carries a Host field
 * naming another authority, which the RFC lets a server treat as malformed: the backend would
 * otherwise be told a host the client's h2 layer never asked for.
 */
export function adaptHttp2Request(req: IncomingMessage): boolean {
  const source = req.headers;
  const headers: IncomingHttpHeaders = {};
  for (const name in source) {
    if (name.charCodeAt(0) !== 0x3a /* : */) headers[name] = source[name];
  }
  const authority = source[':authority'];
  if (typeof authority === 'string') {
    const host = headers.host;
    if (host !== undefined && (host.length !== authority.length || host.toLowerCase() !== authority.toLowerCase())) return false;
    headers.host = authority;
  }
  // RFC 8441's extended CONNECT names the protocol the way HTTP/1.1's Upgrade does.
  const protocol = source[':protocol'];
  if (typeof protocol === 'string') headers.upgrade = protocol;
  Object.defineProperty(req, 'headers', { value: headers, writable: true, configurable: true, enumerable: true });
  return true;
}

/** Whether an HTTP/2 request carries a body: its HEADERS frame did not end the stream. */
export function http2HasBody(req: IncomingMessage): boolean {
  return (req as IncomingMessage & { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
}

const { NGHTTP2_NO_ERROR, NGHTTP2_STREAM_STATE_OPEN, NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL } = constants;

/** Request body bytes read and dropped after an early answer before the upload is refused. */
const DRAIN_BYTES = 1024 * 1024;
/** Milliseconds an upload may take after an early answer before it is refused. */
const DRAIN_MS = 5000;

const kDrain = Symbol('proxy-balancer.drain');

interface Drain {
  bytes: number;
  timer: NodeJS.Timeout;
}

type DrainedStream = ServerHttp2Stream & { [kDrain]?: Drain };
type Draining = IncomingMessage & { stream?: DrainedStream };

/**
 * Call right after the balancer's own answer to an HTTP/2 request (a 502, 413, 429...) was ended.
 * A request body the client is still sending is read and dropped, as NGINX's lingering close does,
 * so the stream ends as every other does; past 1 MiB or 5 s the upload is refused with
 * RST_STREAM NO_ERROR (RFC 9113 §8.1), which a hostile client cannot keep from ending. Without
 * this, a body already piped towards an upstream that then failed was never read again: the client
 * stalled once its flow-control window was full and its stream stayed open for good. A reset
 * straight after the answer is no cure: nghttp2 sends RST_STREAM ahead of queued DATA, and a Node
 * client that reads both in one go never closes its stream (measured). Neither the reset nor DATA
 * arriving after it counts against the session (3,000 such streams on one session, no GOAWAY on
 * Node 20, 22 and 24); a reset of ours is no premature reset (lib/protect/premature-reset.ts).
 */
export function drainHttp2Upload(req: IncomingMessage): void {
  const stream = (req as Draining).stream;
  if (stream === undefined || stream.closed || stream.destroyed || stream[kDrain] !== undefined) return;
  const state = stream.state.state;
  if (state !== NGHTTP2_STREAM_STATE_OPEN && state !== NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL) return;
  const timer = setTimeout(refuseUpload, DRAIN_MS, stream);
  timer.unref();
  stream[kDrain] = { bytes: 0, timer };
  stream.once('close', onDrainedClose);
  // Reading makes Node leave the stream to us: it resets only uploads nobody read. A body that was
  // piped upstream is paused once unpiped, so a listener alone would not restart it.
  req.on('data', onDrainedData);
  req.resume();
}

function onDrainedData(this: Draining, chunk: Buffer): void {
  const stream = this.stream!;
  const drain = stream[kDrain]!;
  drain.bytes += chunk.length;
  if (drain.bytes > DRAIN_BYTES) refuseUpload(stream);
}

function onDrainedClose(this: DrainedStream): void {
  clearTimeout(this[kDrain]!.timer);
}

function refuseUpload(stream: ServerHttp2Stream): void {
  if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
}
