import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { exchangeOf } from '../proxy/exchange.js';
import { logProtect } from './log.js';
import { rejectRequest, rejectUpgrade, type Rejection } from './reject.js';

/**
 * A request whose body length two parties could read differently is never forwarded: that
 * disagreement is what request smuggling exploits (RFC 9112 §6.1, §6.3). Node's parser already
 * refuses most such requests with 400 before any handler runs; this check covers what a lenient
 * parser (`insecureHTTPParser`) or another front end lets through.
 */
export const AMBIGUOUS_FRAMING: Rejection = Object.freeze({ status: 400, close: true });

const CONTENT_LENGTH = 'content-length';

/**
 * Why `req` has ambiguous framing, or undefined when it has none. Costs a field read and two header
 * lookups for a request without a body, so it runs on every request.
 */
export function framingProblem(req: IncomingMessage): string | undefined {
  // Node takes a request line without a version as HTTP/0.9, headers and all: that is what a CRLF
  // injected into a URL (`GET /a\r\nX-Injected: b HTTP/1.1`) looks like on arrival.
  if (req.httpVersionMajor === 0) return 'HTTP/0.9 request line';
  const headers = req.headers;
  const te = headers['transfer-encoding'];
  const cl = headers[CONTENT_LENGTH];
  if (te === undefined && cl === undefined) return undefined;
  if (te !== undefined) {
    if (cl !== undefined) return 'both Content-Length and Transfer-Encoding';
    // HTTP/1.0 has no chunked coding: an HTTP/1.0 peer would read this body differently.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return 'Transfer-Encoding in HTTP/1.0';
    // Node joins repeated fields with ', ', so 'chunked, chunked' is caught here too.
    if (te.length !== 7 || te.toLowerCase() !== 'chunked') return `Transfer-Encoding ${JSON.stringify(te)}`;
    return undefined;
  }
  // Node keeps only the first Content-Length in req.headers; the raw list shows repeats.
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === CONTENT_LENGTH.length && name.toLowerCase() === CONTENT_LENGTH && ++seen > 1) return 'duplicate Content-Length';
  }
  return undefined;
}

/** Answers 400 and closes the connection when `req` has ambiguous framing; true when it did. */
export function refusedFraming(req: IncomingMessage, res: ServerResponse): boolean {
  const problem = framingProblem(req);
  if (problem === undefined) return false;
  if (logProtect.enabled) logProtect('400 %s %s from %s: %s', req.method, req.url, req.socket.remoteAddress, problem);
  rejectRequest(req, res, AMBIGUOUS_FRAMING);
  return true;
}

/** The same for a WebSocket handshake, answered on its raw socket. */
export function refusedUpgradeFraming(req: IncomingMessage, socket: Duplex): boolean {
  const problem = framingProblem(req);
  if (problem === undefined) return false;
  if (logProtect.enabled) logProtect('400 upgrade %s from %s: %s', req.url, req.socket.remoteAddress, problem);
  rejectUpgrade(socket, AMBIGUOUS_FRAMING);
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
