import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { exchangeOf } from '../proxy/exchange.js';
import { validHost } from './host.js';
import { logProtect } from './log.js';
import { mayHaveBody, rejectRequest, rejectUpgrade, type Rejection } from './reject.js';
import { HEADERS_TOO_LARGE } from './request-limits.js';

/**
 * A request whose body length two parties could read differently is never forwarded: that
 * disagreement is what request smuggling exploits (RFC 9112 §6.1, §6.3). Node's parser already
 * refuses most such requests with 400 before any handler runs; this check covers what a lenient
 * parser (`insecureHTTPParser`), an older Node or another front end lets through.
 */
export const AMBIGUOUS_FRAMING: Rejection = Object.freeze({ status: 400, close: true });
/** RFC 9112 §3.2: a request with no single valid Host gets 400. */
export const BAD_HOST: Rejection = Object.freeze({ status: 400, close: true });

/** Why a request head is refused, and with what. Allocated only for a refusal. */
export interface HeadProblem {
  rejection: Rejection;
  reason: string;
}

const CONTENT_LENGTH = 'content-length';
// Node's HTTP/1 parser keeps this many raw header entries (names and values) unless the server
// sets maxHeadersCount; the rest are dropped from req.headers, though the parser still frames the
// body by them.
const NODE_HEADER_ENTRIES = 2000;

/**
 * What is wrong with the head of `req`, or undefined. One pass over the raw fields counts them,
 * the Host fields and the Content-Length fields, so it runs on every request: a request with more
 * than `maxFields` fields (0: no limit of ours) gets 431, as does one Node may have cut short;
 * a duplicate or malformed Host, or ambiguous framing, gets 400.
 */
export function headProblem(req: IncomingMessage, maxFields: number): HeadProblem | undefined {
  // Node takes a request line without a version as HTTP/0.9, headers and all: that is what a CRLF
  // injected into a URL (`GET /a\r\nX-Injected: b HTTP/1.1`) looks like on arrival.
  if (req.httpVersionMajor === 0) return { rejection: AMBIGUOUS_FRAMING, reason: 'HTTP/0.9 request line' };
  const raw = req.rawHeaders;
  const h2 = req.httpVersionMajor === 2;
  let fields = raw.length >> 1;
  let hosts = 0;
  let lengths = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4) {
      if (isHost(name)) hosts++;
    } else if (name.length === 14) {
      if (name.toLowerCase() === CONTENT_LENGTH) lengths++;
    } else if (h2 && name.charCodeAt(0) === 0x3a /* : */) {
      fields--;
    }
  }
  if (maxFields > 0 && fields > maxFields) return { rejection: HEADERS_TOO_LARGE, reason: `${fields} header fields, over maxHeaders (${maxFields})` };
  if (!h2 && raw.length >= nodeHeaderEntries(req)) {
    // The fields past Node's limit are gone from req.headers, yet the body was framed by them: a
    // Content-Length or Transfer-Encoding among them would leave the body unframed upstream.
    return { rejection: HEADERS_TOO_LARGE, reason: `${fields} header fields, at Node's maxHeadersCount` };
  }
  if (hosts > 1) return { rejection: BAD_HOST, reason: 'more than one Host field' };
  const host = req.headers.host;
  if (host !== undefined && !validHost(host)) return { rejection: BAD_HOST, reason: `Host ${JSON.stringify(host)} is not uri-host[:port]` };
  const problem = framingProblem(req, lengths);
  return problem === undefined ? undefined : { rejection: AMBIGUOUS_FRAMING, reason: problem };
}

function framingProblem(req: IncomingMessage, lengths: number): string | undefined {
  const headers = req.headers;
  const te = headers['transfer-encoding'];
  if (te === undefined) return lengths > 1 ? 'duplicate Content-Length' : undefined;
  if (lengths > 0) return 'both Content-Length and Transfer-Encoding';
  // HTTP/1.0 has no chunked coding: an HTTP/1.0 peer would read this body differently.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return 'Transfer-Encoding in HTTP/1.0';
  // Node joins repeated fields with ', ', so 'chunked, chunked' is caught here too.
  if (te.length !== 7 || te.toLowerCase() !== 'chunked') return `Transfer-Encoding ${JSON.stringify(te)}`;
  return undefined;
}

/** 'host' in any case, without the string toLowerCase would make. */
function isHost(name: string): boolean {
  return (
    (name.charCodeAt(0) | 0x20) === 0x68 && (name.charCodeAt(1) | 0x20) === 0x6f && (name.charCodeAt(2) | 0x20) === 0x73 && (name.charCodeAt(3) | 0x20) === 0x74
  );
}

/** How many raw header entries Node's parser keeps for this connection before dropping the rest. */
function nodeHeaderEntries(req: IncomingMessage): number {
  const parser = (req.socket as { parser?: { maxHeaderPairs?: number } | null }).parser;
  const entries = parser?.maxHeaderPairs;
  if (typeof entries !== 'number') return NODE_HEADER_ENTRIES;
  // 0: the server set maxHeadersCount to 0, and Node keeps every field.
  return entries === 0 ? Number.POSITIVE_INFINITY : entries;
}

/** Answers 400 or 431 and closes the connection when the head of `req` is refused; true when it did. */
export function refusedHead(req: IncomingMessage, res: ServerResponse, maxFields: number): boolean {
  const problem = headProblem(req, maxFields);
  if (problem === undefined) return false;
  if (logProtect.enabled) logProtect('%d %s %s from %s: %s', problem.rejection.status, req.method, req.url, req.socket.remoteAddress, problem.reason);
  rejectRequest(req, res, problem.rejection);
  return true;
}

const UPGRADE_WITH_BODY: HeadProblem = Object.freeze({ rejection: AMBIGUOUS_FRAMING, reason: 'a handshake with a body' });

/**
 * The same for a WebSocket handshake, answered on its raw socket. A handshake that declares a body
 * is refused too: the engine sends the handshake without it (what follows the head is the tunnel's),
 * so a backend that answered without upgrading would take the next request's bytes for that body.
 */
export function refusedUpgradeHead(req: IncomingMessage, socket: Duplex, maxFields: number): boolean {
  const problem = headProblem(req, maxFields) ?? (mayHaveBody(req) ? UPGRADE_WITH_BODY : undefined);
  if (problem === undefined) return false;
  if (logProtect.enabled) logProtect('%d upgrade %s from %s: %s', problem.rejection.status, req.url, req.socket.remoteAddress, problem.reason);
  rejectUpgrade(socket, problem.rejection);
  return true;
}

/**
 * A request Node's HTTP client refuses to send (a header name or value with forbidden characters,
 * which only a lenient parser lets in) makes the engine throw synchronously. It is the client's
 * malformed request, not the target's failure: 400, and the connection is closed.
 */
export function refuseUnforwardable(req: IncomingMessage, client: ServerResponse | Duplex, err: unknown): void {
  const exchange = exchangeOf(client);
  exchange?.failed(err instanceof Error ? err : new Error(String(err)));
  if (logProtect.enabled) logProtect('400 %s %s from %s: cannot be forwarded: %s', req.method, req.url, req.socket.remoteAddress, (err as Error)?.message);
  if (client instanceof ServerResponse) rejectRequest(req, client, AMBIGUOUS_FRAMING);
  else rejectUpgrade(client, AMBIGUOUS_FRAMING);
}
