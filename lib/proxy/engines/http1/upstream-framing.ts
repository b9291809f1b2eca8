import type { IncomingMessage } from 'node:http';
import { http2HasBody } from '../../http2.js';

/**
 * Frames the body of the request the engine is about to send, in place of http-proxy's
 * `deleteLength` pass. That pass turned a DELETE or OPTIONS with `Transfer-Encoding: chunked` into
 * `Content-Length: 0` and piped the body anyway, so the backend read the body as a second request
 * (CVE-2026-29057). Node's HTTP client frames a body it is given only by the headers it is given
 * (GET, HEAD, DELETE, OPTIONS and TRACE are not chunked by default), so every request whose body
 * is forwarded states its framing:
 * - HTTP/1.1: Node's parser framed the body by the same Content-Length or Transfer-Encoding that
 *   `req.headers` holds (the head check refused every ambiguous or cut-short head), so those stay,
 *   the coding written in its one canonical spelling.
 * - HTTP/2: a body has no framing field of its own; a `content-length` nghttp2 has checked against
 *   the DATA frames stays, and a body without one goes chunked, as Envoy and HAProxy send it.
 */
export function frameUpstreamBody(req: IncomingMessage): void {
  const headers = req.headers;
  if (req.httpVersionMajor === 2) {
    if (headers['content-length'] === undefined && http2HasBody(req)) headers['transfer-encoding'] = 'chunked';
  } else if (headers['transfer-encoding'] !== undefined) {
    headers['transfer-encoding'] = 'chunked';
  }
}
