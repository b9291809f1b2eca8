import type { IncomingMessage } from 'node:http';
import type { Rejection } from './reject.js';
import { fail } from './validate.js';

/**
 * Public path prefixes mapped to upstream ones: `{ '/api': '/internal/v2' }` sends `/api/users?id=1`
 * as `/internal/v2/users?id=1`. Prefixes match whole path segments and the longest one wins.
 */
export type PathRewrite = Readonly<Record<string, string>>;

/**
 * The request target as the client sent it, kept on a request `pathRewrite` rewrote when no
 * framework did (`req.originalUrl`): the response cache keys on the URL the client asked for.
 */
export const kUrlBeforeRewrite = Symbol('proxy-balancer.urlBeforeRewrite');

export const ESCAPE_ATTEMPT: Rejection = Object.freeze({ status: 400 });
export const NO_ROUTE: Rejection = Object.freeze({ status: 404 });

interface Rule {
  /** Prefix without its trailing slash ('' for '/'). */
  from: string;
  to: string;
}

// Rounds of percent-decoding looked through: '%252e' is '%2e' to a backend that decodes twice.
const DECODE_ROUNDS = 3;

/**
 * Applies `pathRewrite` and confines each request to the prefix it matched: the rest of the path
 * may not climb out of it (`..`, `.`, `%2e%2e`, encoded or literal `/` and `\` inside a segment,
 * `..;`, NUL, under up to three rounds of percent-decoding) — 400; a path no prefix matches — 404.
 */
export class PathRewriter {
  readonly #rules: Rule[];

  constructor(input: unknown) {
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      fail('pathRewrite', "an object mapping path prefixes to upstream prefixes, like { '/api': '/v2' }", input);
    const rules: Rule[] = [];
    for (const [from, to] of Object.entries(input as Record<string, unknown>)) {
      if (!from.startsWith('/') || typeof to !== 'string' || !to.startsWith('/')) {
        fail(`pathRewrite[${JSON.stringify(from)}]`, 'an absolute path mapped from an absolute path prefix', to);
      }
      if (from.includes('?') || to.includes('?') || from.includes('%') || to.includes('%')) {
        fail(`pathRewrite[${JSON.stringify(from)}]`, 'a plain path (no query, no percent-encoding) mapped from a plain prefix', to);
      }
      rules.push({ from: trimSlash(from), to: trimSlash(to) });
    }
    if (rules.length === 0) fail('pathRewrite', 'an object with at least one prefix', input);
    this.#rules = rules.sort((a, b) => b.from.length - a.from.length);
  }

  /** Rewrites `req.url` in place (origin-form); returns the refusal when the path escapes or matches nothing. */
  rewrite(req: IncomingMessage): Rejection | undefined {
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    for (const rule of this.#rules) {
      const from = rule.from;
      if (!path.startsWith(from) || (path.length > from.length && path.charCodeAt(from.length) !== 0x2f) /* / */) continue;
      const rest = path.slice(from.length);
      if (escapes(rest)) return ESCAPE_ATTEMPT;
      const rewritten = rule.to + rest;
      const mounted = req as IncomingMessage & { originalUrl?: unknown; [kUrlBeforeRewrite]?: string };
      if (typeof mounted.originalUrl !== 'string') mounted[kUrlBeforeRewrite] = url;
      req.url = (rewritten === '' ? '/' : rewritten) + (query === -1 ? '' : url.slice(query));
      return undefined;
    }
    return NO_ROUTE;
  }
}

function trimSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
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
