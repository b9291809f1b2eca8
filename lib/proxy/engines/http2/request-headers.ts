import type { IncomingMessage } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Target } from '../../../target.js';

// RFC 9113 §8.2.2: connection-specific fields must not go out in HTTP/2 (Node refuses to send them);
// Host becomes :authority (§8.3.1). HTTP2-Settings belongs to the h2c upgrade this engine never does.
const NOT_IN_HTTP2 = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/**
 * The HEADERS of the upstream stream for a request whose header set the balancer has prepared
 * (hop-by-hop fields stripped, forwarding fields added): the same fields, without those HTTP/2
 * forbids (`TE` only as `trailers`, which `stripRequestHopByHop` left when the client accepts them),
 * with pseudo-headers: `:authority` from `Host` (the target's with `changeOrigin`), `:path` the
 * target's base path joined with the request's.
 */
export function upstreamHeaders(target: Target, req: IncomingMessage, changeOrigin: boolean): OutgoingHttpHeaders {
  const source = req.headers;
  const host = source.host;
  const headers: OutgoingHttpHeaders = {
    ':method': req.method ?? 'GET',
    ':scheme': target.url.protocol === 'https:' ? 'https' : 'http',
    ':authority': changeOrigin || host === undefined ? target.host : host,
    ':path': upstreamPath(target, req.url ?? '/'),
  };
  for (const name in source) {
    if (NOT_IN_HTTP2.has(name)) continue;
    const value = source[name];
    if (value === undefined || (name === 'te' && value !== 'trailers')) continue;
    headers[name] = value;
  }
  return headers;
}

/** The target's base path (none for `/`) and the request's origin-form path, with one slash where they meet. */
function upstreamPath(target: Target, path: string): string {
  const base = target.url.pathname;
  if (base === '/' || base === '') return path;
  return base.endsWith('/') && path.startsWith('/') ? base + path.slice(1) : base + path;
}
