import type { IncomingMessage } from 'node:http';

const kMount = Symbol('proxy-balancer.mount');
const kRulePrefix = Symbol('proxy-balancer.rulePrefix');

type WithPrefixes = IncomingMessage & { [kMount]?: string; [kRulePrefix]?: string; baseUrl?: unknown; originalUrl?: unknown };

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
 * derives from `req.url`) and the public prefix the matched rule removed ('' for a function).
 */
export function recordRewrite(req: IncomingMessage, rulePrefix: string): void {
  const mounted = req as WithPrefixes;
  mounted[kMount] = mountPrefix(req);
  mounted[kRulePrefix] = rulePrefix;
}

/**
 * The public path in front of what the backend receives, as `X-Forwarded-Prefix` carries it: the
 * mount path, then the prefix a `pathRewrite` rule matched (`/users` + `/api`).
 */
export function publicPrefix(req: IncomingMessage): string {
  const rule = (req as WithPrefixes)[kRulePrefix];
  return rule === undefined ? mountPrefix(req) : mountPrefix(req) + rule;
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
