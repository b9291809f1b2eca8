import type { IncomingMessage } from 'node:http';
import { clientProto } from './forwarded.js';
import { publicPath } from './public-prefix.js';
import type { Target } from '../target.js';

/**
 * Rewrites a `Location`/`Content-Location` value that points at the target itself to the address the
 * client used (scheme, host, mount path, `pathRewrite` undone), as NGINX's default `proxy_redirect` does; any other
 * value comes back unchanged. Keeps backend addresses out of redirects. A path-absolute value gets
 * the mount path and `pathRewrite` undone; a relative one (`login`, `../x`) already resolves
 * against the public URL the client asked for, and is left alone.
 */
export function rewriteLocation(value: string, target: Target, req: IncomingMessage, forwardedHeadersSet: boolean): string {
  if (value.charCodeAt(0) === 0x2f /* / */) return pathAbsolute(value, target, req);
  const base = target.key;
  if (!underPrefix(value, base)) return value;
  return `${clientOrigin(req, forwardedHeadersSet)}${publicPath(req, absolutePath(value.slice(base.length)))}`;
}

/**
 * A path-absolute value (`/login`) is on the target's own origin, so it gets the same treatment
 * without a scheme and host: it stays relative to whatever host the client used. A
 * network-path reference (`//host/x`, or `/\host` as browsers read it) names another host.
 */
function pathAbsolute(value: string, target: Target, req: IncomingMessage): string {
  const second = value.charCodeAt(1);
  if (second === 0x2f /* / */ || second === 0x5c /* \ */) return value;
  const path = target.url.pathname;
  // A target path of its own ('http://b:1/v2') must lead the value, or the value lies outside what the client can reach.
  if (path.length <= 1) return publicPath(req, value);
  const prefix = path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path;
  return underPrefix(value, prefix) ? publicPath(req, absolutePath(value.slice(prefix.length))) : value;
}

// Only a whole path segment matches: 'http://b:1/app' must not swallow 'http://b:1/apple'.
function underPrefix(value: string, prefix: string): boolean {
  if (!value.startsWith(prefix)) return false;
  const next = value.charCodeAt(prefix.length);
  return Number.isNaN(next) || next === 0x2f /* / */ || next === 0x3f /* ? */ || next === 0x23 /* # */;
}

function absolutePath(rest: string): string {
  return rest === '' || rest.charCodeAt(0) !== 0x2f ? `/${rest}` : rest;
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
