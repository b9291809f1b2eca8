import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parseHttpDate } from './http-date.js';
import { freshnessLifetime, parseAge, responsePolicy, type ResponsePolicy } from './policy.js';
import type { CachedResponse } from './store.js';
import { sharedHeaders } from './private-cookie.js';
import { withoutOwnMember } from './status.js';

/**
 * Header fields never stored (RFC 9111 §3.1): hop-by-hop ones, the ones specific to the proxy
 * a cache forwards through, and Age (recomputed on every use).
 */
const NOT_STORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authentication-info',
  'proxy-authorization',
  'age',
]);
/**
 * Header fields a 304 does not update (RFC 9111 §3.2): Content-Length, and the ones the stored
 * body depends on (its encoding as stored, the range it holds).
 */
const NOT_UPDATED_BY_304 = new Set(['content-length', 'content-encoding', 'content-range']);

/** What building an entry needs besides the response: which fields are the exchange's own, and the targeted fields in use. */
export interface EntryContext {
  /** The cache's outcome header (X-Cache). */
  own: string | undefined;
  /** The Cache-Status member the cache appended to this response: the upstream's members are stored, not this exchange's. */
  member: string | undefined;
  /** Fields the app had set before the cache ran, with their values: not part of the stored response unless the upstream changed them. */
  preset: ReadonlyMap<string, string>;
  /** Targeted cache-control fields, in precedence order (RFC 9213). */
  targets: readonly string[];
}

export function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** Flat header fields as a message's header object: repeated fields joined with ', ' (set-cookie kept as a list). */
export function asIncoming(flat: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    const prior = out[name];
    if (prior === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prior)) prior.push(value);
    else out[name] = `${prior}, ${value}`;
  }
  return out as IncomingHttpHeaders;
}

/** Fields the Connection header of a message nominates as hop-by-hop (RFC 9110 §7.6.1), lower-case. */
function connectionNominated(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  return String(value)
    .split(',')
    .map((name) => name.trim().toLowerCase());
}

/** Whether a header field is the exchange's own: the cache's outcome header, or one the app set that the upstream left alone. */
function ownField(name: string, value: unknown, ctx: EntryContext): boolean {
  return name === ctx.own || ctx.preset.get(name) === String(value);
}

function push(flat: string[], name: string, value: string | number | readonly string[]): void {
  if (Array.isArray(value)) for (const v of value) flat.push(name, String(v));
  else flat.push(name, String(value));
}

/**
 * The response's header fields as stored: without hop-by-hop and Connection-nominated fields,
 * without fields a qualified `no-cache` or `private` names, with Content-Length of the body kept.
 */
function storedFields(headers: OutgoingHttpHeaders, body: Buffer, policy: ResponsePolicy, ctx: EntryContext): string[] {
  const nominated = connectionNominated(headers.connection);
  const { noCacheFields, privateFields } = policy.cc;
  const flat: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    // HTTP/2's compat API lists ':status' among the headers of a written head.
    if (value === undefined || NOT_STORED.has(name) || name === 'content-length' || name.charCodeAt(0) === 0x3a || ownField(name, value, ctx)) continue;
    if (nominated?.includes(name) || noCacheFields?.includes(name) || privateFields?.includes(name)) continue;
    if (name === 'cache-status') {
      const upstream = withoutOwnMember(Array.isArray(value) ? value.join(', ') : String(value), ctx.member);
      if (upstream !== undefined) flat.push(name, upstream);
      continue;
    }
    push(flat, name, value);
  }
  flat.push('content-length', String(body.length));
  return flat;
}

/** A stored response built from the response the cache just relayed. */
export function buildEntry(
  res: ServerResponse,
  body: Buffer,
  requestTime: number,
  freshness: number,
  policy: ResponsePolicy,
  ctx: EntryContext,
  partial: CachedResponse['partial'],
): CachedResponse {
  const headers = sharedHeaders(res);
  return describe(res.statusCode, storedFields(headers, body, policy, ctx), body, requestTime, Date.now(), freshness, policy, parseAge(headers.age), partial);
}

function describe(
  status: number,
  headers: string[],
  body: Buffer,
  requestTime: number,
  responseTime: number,
  freshness: number,
  policy: ResponsePolicy,
  ageValue: number,
  partial: CachedResponse['partial'],
): CachedResponse {
  const cc = policy.cc;
  return {
    status,
    headers,
    body,
    requestTime,
    responseTime,
    date: parseHttpDate(headerValue(headers, 'date')) ?? responseTime,
    ageValue,
    freshness,
    staleWhileRevalidate: Math.max(0, cc.staleWhileRevalidate) * 1000,
    staleIfError: Math.max(0, cc.staleIfError) * 1000,
    noCache: cc.noCache,
    // s-maxage implies proxy-revalidate for a shared cache (RFC 9111 §5.2.2.10).
    mustRevalidate: cc.mustRevalidate || cc.proxyRevalidate || cc.sMaxAge >= 0,
    etag: headerValue(headers, 'etag'),
    lastModified: headerValue(headers, 'last-modified'),
    varyValues: undefined,
    partial,
  };
}

/**
 * A stored response freshened by a 304 (RFC 9111 §3.2, §4.3.4): every field the 304 carries
 * replaces the stored one, except Content-Length, the fields the stored body depends on and the
 * ones never stored; new times, Date and Age from the 304; same body.
 */
export function refreshEntry(stale: CachedResponse, res: ServerResponse, requestTime: number, ctx: EntryContext): CachedResponse {
  const updates = sharedHeaders(res);
  const nominated = connectionNominated(updates.connection);
  const updatable = (name: string, value: unknown): boolean =>
    value !== undefined && !NOT_STORED.has(name) && !NOT_UPDATED_BY_304.has(name) && !nominated?.includes(name) && !ownField(name, value, ctx);
  const headers: string[] = [];
  for (let i = 0; i < stale.headers.length; i += 2) {
    const name = stale.headers[i]!;
    if (!updatable(name, updates[name])) headers.push(name, stale.headers[i + 1]!);
  }
  for (const [name, value] of Object.entries(updates)) if (updatable(name, value)) push(headers, name, value!);
  const now = Date.now();
  const incoming = asIncoming(headers);
  const policy = responsePolicy(incoming, ctx.targets);
  const freshness = freshnessLifetime(stale.status, incoming, policy, now);
  return describe(stale.status, headers, stale.body, requestTime, now, freshness, policy, parseAge(updates.age), stale.partial);
}

/** The entry without one header field (a Set-Cookie a 304 brought, answered but not kept). */
export function withoutField(entry: CachedResponse, name: string): CachedResponse {
  const headers: string[] = [];
  for (let i = 0; i < entry.headers.length; i += 2) if (entry.headers[i] !== name) headers.push(entry.headers[i]!, entry.headers[i + 1]!);
  return { ...entry, headers };
}

function strongEqual(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && a === b && !a.startsWith('W/');
}

/**
 * Combines two stored parts of one representation (RFC 9111 §3.4): when they have the same
 * strong validator and complete length and overlap or touch, one part holding both (the newer
 * wins where they overlap), or the complete response once every byte is there. Otherwise the newer.
 */
export function combineParts(older: CachedResponse | undefined, newer: CachedResponse): CachedResponse {
  const a = older?.partial;
  const b = newer.partial;
  if (older === undefined || a === undefined || b === undefined || a.total !== b.total || !strongEqual(older.etag, newer.etag)) return newer;
  if (b.start > a.end + 1 || a.start > b.end + 1) return newer;
  const start = Math.min(a.start, b.start);
  const end = Math.max(a.end, b.end);
  const body = Buffer.alloc(end - start + 1);
  older.body.copy(body, a.start - start);
  newer.body.copy(body, b.start - start);
  const whole = start === 0 && end === b.total - 1;
  const headers: string[] = [];
  for (let i = 0; i < newer.headers.length; i += 2) {
    const name = newer.headers[i]!;
    if (name !== 'content-range' && name !== 'content-length') headers.push(name, newer.headers[i + 1]!);
  }
  if (!whole) headers.push('content-range', `bytes ${start}-${end}/${b.total}`);
  headers.push('content-length', String(body.length));
  return { ...newer, status: whole ? 200 : 206, headers, body, partial: whole ? undefined : { start, end, total: b.total } };
}
