import type { IncomingMessage } from 'node:http';
import { mountPrefix, recordRewrite, UNNAMED_CHANGE, type PrefixChange } from '../proxy/public-prefix.js';
import { logProtect } from './log.js';
import type { Rejection } from './reject.js';
import { fail } from '../validate.js';

/**
 * Your own rewrite, as in http-proxy-middleware: gets the origin-form path with its query
 * (`/api/users?id=1`) and the request, returns the path to send upstream, or undefined to keep it.
 * It runs synchronously; its result is confined (no dot segments, encoded slashes, backslashes,
 * NUL, `//`), or the request gets 400.
 */
export type PathRewriteFunction = (path: string, req: IncomingMessage) => string | undefined;

/**
 * Public path prefixes mapped to upstream ones: `{ '/api': '/internal/v2' }` sends `/api/users?id=1`
 * as `/internal/v2/users?id=1`. Prefixes match whole path segments and the longest one wins. A key
 * may be written as http-proxy-middleware writes it, `^`-anchored (`{ '^/api': '' }`), as long as
 * the rest is a plain prefix. Or a function, `(path, req) => string`. Mounted (`app.use('/api', lb)`),
 * prefixes are read below the mount path, unless one lies at or under it (`{ '^/api': '' }`): then
 * all are read against the path as the client sent it.
 */
export type PathRewrite = Readonly<Record<string, string>> | PathRewriteFunction;

/**
 * The request target as the client sent it, kept on a request `pathRewrite` rewrote when no
 * framework did (`req.originalUrl`): the response cache keys on the URL the client asked for.
 */
export const kUrlBeforeRewrite = Symbol('proxy-balancer.urlBeforeRewrite');

export const ESCAPE_ATTEMPT: Rejection = Object.freeze({ status: 400 });
export const NO_ROUTE: Rejection = Object.freeze({ status: 404 });
/** A rewrite function threw or returned something other than a string. */
export const REWRITE_FAILED: Rejection = Object.freeze({ status: 500 });

interface Rule extends PrefixChange {
  /** Prefix without its trailing slash ('' for '/'). */
  from: string;
  to: string;
}

// Rounds of percent-decoding looked through: '%252e' is '%2e' to a backend that decodes twice.
const DECODE_ROUNDS = 3;

// What makes a `^`-anchored key a regular expression rather than a prefix.
const REGEX_SYNTAX = /[\\.*+?()[\]{}|$^]/;
// Endings of a pattern that a whole-segment prefix already covers: `/?`, `/.*`, `(/.*)?`, `.*`, `$`.
const PREFIX_TAIL = /(?:\/\?|\/?\.\*|\(\/\.\*\)\?|\(\.\*\)|\$)$/;
// Characters a request target may carry as they are (RFC 9112 origin-form, visible ASCII, no '#').
const TARGET_CHARS = /^[\x21-\x22\x24-\x7e]*$/;

/**
 * Applies `pathRewrite` and confines each request to the prefix it matched: the rest of the path
 * may not climb out of it (`..`, `.`, `%2e%2e`, encoded or literal `/` and `\` inside a segment,
 * `..;`, NUL, under up to three rounds of percent-decoding) — 400; a path no prefix matches — 404.
 * With a function, its result may hold none of these anywhere.
 */
export class PathRewriter {
  readonly #rules: Rule[];
  readonly #rewrite: PathRewriteFunction | undefined;

  constructor(input: unknown) {
    if (typeof input === 'function') {
      this.#rules = [];
      this.#rewrite = input as PathRewriteFunction;
      return;
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      fail('pathRewrite', "an object mapping path prefixes to upstream prefixes, like { '/api': '/v2' }, or a function (path, req) => path", input);
    const rules: Rule[] = [];
    for (const [key, to] of Object.entries(input as Record<string, unknown>)) {
      const from = key.startsWith('^') ? anchoredPrefix(key, to) : key;
      if (!from.startsWith('/') || typeof to !== 'string' || (to !== '' && !to.startsWith('/'))) {
        fail(`pathRewrite[${JSON.stringify(key)}]`, "an absolute path (or '') mapped from an absolute path prefix", to);
      }
      if (from.includes('?') || to.includes('?') || from.includes('%') || to.includes('%')) {
        fail(`pathRewrite[${JSON.stringify(key)}]`, 'a plain path (no query, no percent-encoding) mapped from a plain prefix', to);
      }
      const rule = strippedRule(trimSlash(from), trimSlash(to));
      const twin = rules.find((r) => r.from === rule.from);
      if (twin !== undefined)
        fail(`pathRewrite[${JSON.stringify(key)}]`, `a prefix of its own (another key names ${JSON.stringify(twin.from || '/')} too)`, key);
      rules.push(rule);
    }
    if (rules.length === 0) fail('pathRewrite', 'an object with at least one prefix', input);
    this.#rules = rules.sort((a, b) => b.from.length - a.from.length);
    this.#rewrite = undefined;
  }

  /**
   * Rewrites `req.url` in place (origin-form); returns the refusal when the path escapes, matches nothing, or the function failed.
   *
   * Under a mount (`app.use('/api', lb)`: `req.url` is '/users', the client sent '/api/users'),
   * rules are matched against the path below the mount, unless one of them lies at or under the
   * mount path (`{ '^/api': '' }`, http-proxy-middleware's config carried over): that rule was
   * written for the path as the client sent it, and then every rule is matched against that whole
   * path, the mount path included. The mount already stripped what such a rule names, so reading it
   * below the mount would match nothing and answer every request 404.
   */
  rewrite(req: IncomingMessage): Rejection | undefined {
    if (this.#rewrite !== undefined) return this.#applyFunction(this.#rewrite, req);
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const mount = mountPrefix(req);
    if (mount !== '' && this.#namesMount(mount)) return this.#rewriteWhole(req, url, query, path, mount);
    for (const rule of this.#rules) {
      const from = rule.from;
      if (!path.startsWith(from) || (path.length > from.length && path.charCodeAt(from.length) !== 0x2f) /* / */) continue;
      const rest = path.slice(from.length);
      if (escapes(rest)) return ESCAPE_ATTEMPT;
      this.#apply(req, url, query, rule, rest, mount);
      return undefined;
    }
    return NO_ROUTE;
  }

  /** Whether a rule's prefix is the mount path or lies under it (whole segments, as case-blind as Express's and Connect's mount matching). */
  #namesMount(mount: string): boolean {
    for (const rule of this.#rules) if (under(rule.from, mount)) return true;
    return false;
  }

  /**
   * Matches the path as the client sent it (mount path + `req.url`'s path). A rule at or under the
   * mount is matched on what follows the mount (the mount's own spelling is the framework's to
   * judge); a rule above it (`'/'`) on the whole path. Either way the rest is confined as usual.
   */
  #rewriteWhole(req: IncomingMessage, url: string, query: number, path: string, mount: string): Rejection | undefined {
    for (const rule of this.#rules) {
      const from = rule.from;
      let rest: string;
      if (under(from, mount)) {
        const tail = from.slice(mount.length);
        if (!path.startsWith(tail) || (path.length > tail.length && path.charCodeAt(tail.length) !== 0x2f) /* / */) continue;
        rest = path.slice(tail.length);
      } else if (from === '' || (mount.startsWith(from) && mount.charCodeAt(from.length) === 0x2f)) {
        rest = mount.slice(from.length) + path;
      } else continue;
      if (escapes(rest)) return ESCAPE_ATTEMPT;
      this.#apply(req, url, query, rule, rest, '');
      return undefined;
    }
    return NO_ROUTE;
  }

  #apply(req: IncomingMessage, url: string, query: number, rule: Rule, rest: string, mount: string): void {
    const rewritten = rule.to + rest;
    recordRewrite(req, rule, mount);
    keepUrlBeforeRewrite(req, url);
    req.url = (rewritten === '' ? '/' : rewritten) + (query === -1 ? '' : url.slice(query));
  }

  #applyFunction(rewrite: PathRewriteFunction, req: IncomingMessage): Rejection | undefined {
    const url = req.url ?? '/';
    let result: unknown;
    try {
      result = rewrite(url, req);
    } catch (err) {
      if (logProtect.enabled) logProtect('pathRewrite function threw on %s: %s', url, (err as Error)?.message);
      return REWRITE_FAILED;
    }
    if (result === undefined) result = url;
    if (typeof result !== 'string') {
      if (logProtect.enabled) logProtect('pathRewrite function returned %s for %s, not a string', typeof result, url);
      return REWRITE_FAILED;
    }
    if (!confined(result)) return ESCAPE_ATTEMPT;
    recordRewrite(req, UNNAMED_CHANGE);
    keepUrlBeforeRewrite(req, url);
    req.url = result;
    return undefined;
  }
}

/**
 * The prefix an http-proxy-middleware key (`'^/api'`) stands for. A key that is a real regular
 * expression is refused, with the prefix it amounts to when there is one and a function otherwise.
 */
function anchoredPrefix(key: string, to: unknown): string {
  const body = key.slice(1);
  if (!REGEX_SYNTAX.test(body)) return body;
  const literal = unescapeLiteral(body.replace(PREFIX_TAIL, ''));
  const option = `pathRewrite[${JSON.stringify(key)}]`;
  if (literal?.startsWith('/')) {
    fail(option, `a plain path prefix (prefixes match whole path segments; no regular expressions): write ${JSON.stringify(literal)}`, key);
  }
  const replacement = typeof to === 'string' ? JSON.stringify(to) : "'...'";
  fail(
    option,
    `a plain path prefix, not a regular expression (prefixes only); for a pattern pass a function: pathRewrite: (path) => path.replace(/${key.replaceAll('/', '\\/')}/, ${replacement})`,
    key,
  );
}

/** The text a pattern matches when it matches only itself (`\.` for '.', a lone '.' taken literally), else undefined. */
function unescapeLiteral(pattern: string): string | undefined {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[++i];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return undefined;
      out += next;
    } else if (c === '.') out += c;
    else if ('*+?()[]{}|$^'.includes(c)) return undefined;
    else out += c;
  }
  return out;
}

// '/api' → '' strips '/api'; '/public/api' → '/api' strips '/public'; '/api' → '/api' strips nothing;
// '/api' → '/internal/v2' strips '/api' and adds '/internal/v2' (as Traefik's StripPrefix + AddPrefix).
function strippedRule(from: string, to: string): Rule {
  const tail = to === '' || from.endsWith(to);
  return { from, to, stripped: tail ? from.slice(0, from.length - to.length) : from, added: tail ? '' : to };
}

/** Whether `prefix` is `mount` or lies under it, whole segments, case-blind as Express's and Connect's mount matching. */
function under(prefix: string, mount: string): boolean {
  if (prefix.length < mount.length || (prefix.length > mount.length && prefix.charCodeAt(mount.length) !== 0x2f) /* / */) return false;
  return prefix.startsWith(mount) || prefix.slice(0, mount.length).toLowerCase() === mount.toLowerCase();
}

function trimSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Whether a rewritten request target stays where a path can go: absolute, not `//authority`, plain characters, no escape anywhere in its path. */
function confined(target: string): boolean {
  if (target.charCodeAt(0) !== 0x2f /* / */ || target.charCodeAt(1) === 0x2f || !TARGET_CHARS.test(target)) return false;
  const query = target.indexOf('?');
  return !escapes(query === -1 ? target : target.slice(0, query));
}

/** Whether a path tail (empty or starting with '/') could leave its prefix once a backend normalizes or decodes it. */
export function escapes(rest: string): boolean {
  // Most paths hold none of the characters an escape needs.
  if (rest.indexOf('.') === -1 && rest.indexOf('%') === -1 && rest.indexOf('\\') === -1) return false;
  for (const raw of rest.split('/')) {
    let segment = raw;
    for (let round = 0; round < DECODE_ROUNDS && segment.indexOf('%') !== -1; round++) {
      try {
        segment = decodeURIComponent(segment);
      } catch {
        // Malformed on the first round is a malformed request; later, a literal '%' that was encoded once.
        if (round === 0) return true;
        break;
      }
      if (segment.indexOf('/') !== -1) return true;
    }
    // Servlet containers drop ';parameters' from a segment, so '..;x' is '..' to them.
    const semicolon = segment.indexOf(';');
    const bare = semicolon === -1 ? segment : segment.slice(0, semicolon);
    if (bare === '.' || bare === '..' || segment.indexOf('\\') !== -1 || segment.indexOf('\0') !== -1) return true;
  }
  return false;
}

// The cache keys on the URL the client asked for; without a framework's originalUrl, that is this one.
function keepUrlBeforeRewrite(req: IncomingMessage, url: string): void {
  const mounted = req as IncomingMessage & { originalUrl?: unknown; [kUrlBeforeRewrite]?: string };
  if (typeof mounted.originalUrl !== 'string') mounted[kUrlBeforeRewrite] = url;
}
