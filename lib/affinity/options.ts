import { fail, knownKeys, LOAD_BALANCE_OPTIONS, milliseconds } from '../validate.js';

/**
 * Session affinity by cookie (HAProxy `cookie … insert`, NGINX `sticky cookie`, Envoy stateful
 * sessions): the first request is placed by the strategy and its response names the target in a
 * cookie; later requests carrying it go to that target while it is in the ready snapshot.
 */
export interface AffinityOptions {
  /** Name of the affinity cookie; default 'lb'. An RFC 6265 token. */
  cookie?: string;
  /**
   * Key of the HMAC that makes cookie values (string or bytes, at least 16 bytes). Instances that
   * share it and the same target URLs give the same values, so any of them honours any one's cookie.
   */
  secret: string | Uint8Array;
  /** Milliseconds the cookie lives (`Max-Age`, rounded up to seconds) from the response that set it, at most 400 days; default 0 (a session cookie, gone when the browser closes). */
  ttl?: number;
  /** Add `Secure` (sent over HTTPS only); default false. Required by `sameSite: 'none'`. */
  secure?: boolean;
  /** `SameSite` attribute; default 'lax'; false for none. */
  sameSite?: 'strict' | 'lax' | 'none' | false;
  /** Add `HttpOnly` (hidden from page scripts); default true. */
  httpOnly?: boolean;
  /** `Path` attribute; default '/'. */
  path?: string;
}

/** Affinity options after validation: the cookie's name and the attributes every Set-Cookie carries. */
export interface ResolvedAffinity {
  cookie: string;
  secret: Uint8Array;
  /** `; Path=/; Max-Age=…; HttpOnly; …`, appended to every value. */
  attributes: string;
}

const KNOWN = ['cookie', 'secret', 'ttl', 'secure', 'sameSite', 'httpOnly', 'path'];
const MIN_SECRET_BYTES = 16;
const MAX_COOKIE_AGE_MS = 400 * 86_400_000;
/** RFC 6265 cookie-name: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 path-value: printable ASCII but ';'. */
const PATH = /^\/[ -:<-~]*$/;
const SAME_SITE = { strict: 'Strict', lax: 'Lax', none: 'None' } as const;

export function resolveAffinity(input: unknown): ResolvedAffinity | undefined {
  if (input === undefined) return undefined;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('affinity', 'an object { cookie, secret, ... }', input);
  const options = input as Record<string, unknown>;
  knownKeys(options, 'affinity', KNOWN);
  const cookie = options.cookie ?? 'lb';
  if (typeof cookie !== 'string' || !TOKEN.test(cookie)) fail('affinity.cookie', 'a cookie name (an RFC 6265 token)', cookie);
  const secret = secretBytes(options.secret);
  // No timer runs on it, so the bound is the browsers' instead: they cap Max-Age at 400 days (RFC 6265bis).
  const ttl = milliseconds(LOAD_BALANCE_OPTIONS, 'affinity.ttl', options.ttl ?? 0, { max: MAX_COOKIE_AGE_MS });
  const secure = flag(options, 'secure', false);
  const httpOnly = flag(options, 'httpOnly', true);
  const sameSite = options.sameSite ?? 'lax';
  if (sameSite !== false && !Object.hasOwn(SAME_SITE, sameSite as string)) fail('affinity.sameSite', "'strict', 'lax', 'none' or false", sameSite);
  if (sameSite === 'none' && !secure) fail('affinity.secure', "true with sameSite: 'none' (browsers drop SameSite=None cookies without Secure)", secure);
  const path = options.path ?? '/';
  if (typeof path !== 'string' || !PATH.test(path)) fail('affinity.path', "a cookie path starting with '/' (no ';' or control characters)", path);
  let attributes = `; Path=${path}`;
  if (ttl > 0) attributes += `; Max-Age=${Math.ceil(ttl / 1000)}`;
  if (httpOnly) attributes += '; HttpOnly';
  if (secure) attributes += '; Secure';
  if (sameSite !== false) attributes += `; SameSite=${SAME_SITE[sameSite as keyof typeof SAME_SITE]}`;
  return { cookie, secret, attributes };
}

function secretBytes(secret: unknown): Uint8Array {
  const bytes = typeof secret === 'string' ? Buffer.from(secret) : secret instanceof Uint8Array ? secret : undefined;
  if (bytes === undefined || bytes.length < MIN_SECRET_BYTES) {
    if (bytes === undefined) fail('affinity.secret', `a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`, secret);
    // A short secret is not echoed into the error, only its length.
    throw new TypeError(`loadBalance: options.affinity.secret must be a string or Buffer of at least ${MIN_SECRET_BYTES} bytes, got ${bytes.length} bytes`);
  }
  return Uint8Array.from(bytes);
}

function flag(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = options[name] ?? fallback;
  if (typeof value !== 'boolean') fail(`affinity.${name}`, 'a boolean', value);
  return value;
}
