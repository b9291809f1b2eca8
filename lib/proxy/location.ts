import type { IncomingMessage } from 'node:http';
import { clientProto } from './forwarded.js';
import { publicPath } from './public-prefix.js';
import type { Target } from '../target.js';

/**
 * Rewrites a `Location`/`Content-Location` value that points at the target itself to the address the
 * client used (scheme, host, mount path, `pathRewrite` undone), as NGINX's default `proxy_redirect` does; any other
 * value comes back unchanged. Keeps backend addresses out of redirects.
 */
export function rewriteLocation(value: string, target: Target, req: IncomingMessage, forwardedHeadersSet: boolean): string {
  const base = target.key;
  if (!value.startsWith(base)) return value;
  const next = value.charCodeAt(base.length);
  // Only a whole path segment matches: 'http://b:1/app' must not swallow 'http://b:1/apple'.
  if (!Number.isNaN(next) && next !== 0x2f /* / */ && next !== 0x3f /* ? */ && next !== 0x23 /* # */) return value;
  const rest = value.slice(base.length);
  return `${clientOrigin(req, forwardedHeadersSet)}${publicPath(req, rest === '' || rest.charCodeAt(0) !== 0x2f ? `/${rest}` : rest)}`;
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const comma = value.indexOf(',');
  return (comma === -1 ? value : value.slice(0, comma)).trim();
}

// When the balancer writes X-Forwarded-Proto/-Host it has set them itself, or kept them from a
// trusted proxy, so they describe what the client typed; otherwise they are the client's own words.
function clientOrigin(req: IncomingMessage, forwardedHeadersSet: boolean): string {
  const headers = req.headers;
  const proto = (forwardedHeadersSet ? firstValue(headers['x-forwarded-proto']) : undefined) ?? clientProto(req);
  const host = (forwardedHeadersSet ? firstValue(headers['x-forwarded-host']) : undefined) ?? headers.host ?? '';
  return `${proto}://${host}`;
}
