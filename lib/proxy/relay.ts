import { type IncomingMessage, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Target } from '../target.js';
import { type CookieRewriter, rewriteSetCookie } from './cookie-rewrite.js';
import { FRAMING, nominatedFields, RESPONSE_HOP_BY_HOP } from './hop-by-hop.js';
import { rewriteLocation } from './location.js';
import { writeHead } from './write-head.js';

const LOCATION_STATUSES = new Set([201, 301, 302, 303, 307, 308]);

/** What shapes the relayed head, resolved once per balancer. */
export interface RelayOptions {
  /** Lower-case names never relayed. */
  hidden: ReadonlySet<string>;
  rewriteLocation: boolean;
  /** `cookieDomainRewrite`/`cookiePathRewrite`; undefined when neither is set. */
  cookies: CookieRewriter | undefined;
  xForwarded: boolean;
  /** A `proxyRes` hook may have edited `proxyRes.headers`: relay those instead of the raw list. */
  fromHeaderObject: boolean;
}

/**
 * The head the client gets for an upstream response: its fields in their original case and order,
 * without hop-by-hop ones (nor those its Connection field names), hidden ones, with
 * `Location`/`Content-Location` pointing at the target rewritten, and `Set-Cookie` `Domain`/`Path`
 * rewritten as the cookie options say. The upstream's own header object
 * is left whole, so Node's agent still reads its `Keep-Alive: timeout=` hint.
 */
export function relayedHeaders(proxyRes: IncomingMessage, target: Target, req: IncomingMessage, options: RelayOptions): string[] {
  const raw = options.fromHeaderObject ? flatten(proxyRes.headers) : proxyRes.rawHeaders;
  const nominated = nominatedFields(proxyRes.headers.connection);
  const rewrite = options.rewriteLocation;
  const cookies = options.cookies;
  const status = proxyRes.statusCode ?? 0;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (RESPONSE_HOP_BY_HOP.has(lower) || options.hidden.has(lower) || nominated?.has(lower) === true) continue;
    let value = raw[i + 1]!;
    if (rewrite && (lower === 'content-location' || (lower === 'location' && LOCATION_STATUSES.has(status)))) {
      value = rewriteLocation(value, target, req, options.xForwarded);
    } else if (cookies !== undefined && lower === 'set-cookie') {
      value = rewriteSetCookie(value, cookies);
    }
    out.push(name, value);
  }
  return out;
}

/** The reason phrase to relay: the upstream's when it is one a response may carry, else the standard one; none over HTTP/2, which has no reason phrases. */
export function reasonPhrase(proxyRes: IncomingMessage, req: IncomingMessage): string | undefined {
  if (req.httpVersionMajor === 2) return undefined;
  const status = proxyRes.statusCode ?? 0;
  const standard = STATUS_CODES[status] ?? '';
  const reason = proxyRes.statusMessage;
  if (reason === undefined || reason === standard) return standard;
  return validFieldText(reason) ? reason : standard;
}

/**
 * Writes the relayed head. False when Node refuses it (a status outside 100–999, a field that is
 * not a token or holds a forbidden byte): the caller answers 502 instead.
 */
export function writeRelayedHead(res: ServerResponse, status: number, reason: string | undefined, headers: string[]): boolean {
  try {
    writeHead(res, status, reason, headers);
    return true;
  } catch {
    // Node validates before it writes anything, but it may have stored some fields first.
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    return false;
  }
}

/** Trailer fields of a finished upstream body, without hop-by-hop ones, for `res.addTrailers()` (an object: the form HTTP/2 takes too). */
export function relayedTrailers(proxyRes: IncomingMessage): Record<string, string> | undefined {
  const raw = proxyRes.rawTrailers;
  if (raw.length === 0) return undefined;
  let out: Record<string, string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (RESPONSE_HOP_BY_HOP.has(name) || FRAMING.has(name)) continue;
    out ??= {};
    const value = raw[i + 1]!;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}

function flatten(headers: IncomingMessage['headers']): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const item of value) out.push(name, item);
  }
  return out;
}

// RFC 9110 §5.5 field-content (and a reason phrase): HTAB, SP, VCHAR, obs-text.
function validFieldText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return false;
  }
  return true;
}
