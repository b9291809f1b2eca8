import type { IncomingMessage } from 'node:http';

const kMount = Symbol('proxy-balancer.mount');
const kRewrite = Symbol('proxy-balancer.rewrite');

/**
 * How a `pathRewrite` rule changed a path's front, split so it can be undone: the public
 * `stripped` part was replaced by the upstream `added` part (`/api` → `/internal/v2`), or only
 * stripped (`/api` → '', `/public/api` → `/api`: `added` is '').
 */
export interface PrefixChange {
  readonly stripped: string;
  readonly added: string;
}

/** A rewrite function changes paths in ways that cannot be named or undone. */
export const UNNAMED_CHANGE: PrefixChange = Object.freeze({ stripped: '', added: '' });

type WithPrefixes = IncomingMessage & { [kMount]?: string; [kRewrite]?: PrefixChange; baseUrl?: unknown; originalUrl?: unknown };

/**
 * The path the app mounted the balancer under (`app.use('/api', lb)` → '/api'): Express's
 * `req.baseUrl`, else what Connect stripped (`req.originalUrl`'s path minus `req.url`'s). Once
 * `pathRewrite` has changed `req.url`, the value recorded before it did.
 */
export function mountPrefix(req: IncomingMessage): string {
  const mounted = req as WithPrefixes;
  const recorded = mounted[kMount];
  if (recorded !== undefined) return recorded;
  if (typeof mounted.baseUrl === 'string') return mounted.baseUrl;
  if (typeof mounted.originalUrl !== 'string' || req.url === undefined) return '';
  const original = pathOf(mounted.originalUrl);
  const rest = pathOf(req.url);
  if (original === rest) return '';
  if (rest === '/' && !original.endsWith('/')) return original;
  return original.endsWith(rest) ? original.slice(0, original.length - rest.length) : '';
}

/**
 * Called by `pathRewrite` before it changes `req.url`: keeps the mount path (which Connect's form
 * derives from `req.url`) and what the matched rule changed. `mount` '' when the rule was matched
 * against the whole path as the client sent it: its `stripped` part holds the mount path already.
 */
export function recordRewrite(req: IncomingMessage, change: PrefixChange, mount = mountPrefix(req)): void {
  const mounted = req as WithPrefixes;
  mounted[kMount] = mount;
  mounted[kRewrite] = change;
}

/**
 * The public path in front of what the backend receives, as `X-Forwarded-Prefix` carries it: the
 * mount path, then the prefix a `pathRewrite` rule stripped (`/users` + `/api`).
 */
export function publicPrefix(req: IncomingMessage): string {
  const change = (req as WithPrefixes)[kRewrite];
  return change === undefined ? mountPrefix(req) : mountPrefix(req) + change.stripped;
}

/**
 * The public form of an upstream path (with any query): the mount path in front, and the
 * `pathRewrite` rule undone when the path lies under what the rule sends to. Paths elsewhere on
 * the target only get the mount path.
 */
export function publicPath(req: IncomingMessage, upstream: string): string {
  const change = (req as WithPrefixes)[kRewrite];
  const mount = mountPrefix(req);
  if (change === undefined) return mount + upstream;
  const added = change.added;
  if (!upstream.startsWith(added)) return mount + upstream;
  const next = upstream.charCodeAt(added.length);
  // Whole segments only, as the rule matched them.
  if (!Number.isNaN(next) && next !== 0x2f /* / */ && next !== 0x3f /* ? */ && next !== 0x23 /* # */) return mount + upstream;
  const rest = upstream.slice(added.length);
  return `${mount}${change.stripped}${rest === '' || rest.charCodeAt(0) !== 0x2f ? `/${rest}` : rest}`;
}

/** The path of a request target, without its query; an absolute-form target loses its scheme and authority. */
function pathOf(url: string): string {
  let start = 0;
  if (url.charCodeAt(0) !== 0x2f /* / */) {
    const authority = url.indexOf('://');
    if (authority !== -1) {
      const slash = url.indexOf('/', authority + 3);
      start = slash === -1 ? url.length : slash;
    }
  }
  const query = url.indexOf('?', start);
  const path = url.slice(start, query === -1 ? url.length : query);
  return path === '' ? '/' : path;
}
