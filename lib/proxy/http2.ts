import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

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
