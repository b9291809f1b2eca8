import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { parseHttpDate } from './http-date.js';
import { contentRange, ifRangeHolds, resolveRange } from './range.js';
import { writeHead as writeFields } from '../proxy/write-head.js';
import { markCacheStatus } from './status.js';
import type { CachedResponse } from './store.js';

/** Fields a 304 leaves out: they describe a body it does not carry. */
const BODY_FIELDS = new Set(['content-length', 'content-type', 'content-encoding', 'content-range', 'transfer-encoding']);
/** Fields a 206 or 416 built from a stored response replaces. */
const RANGE_FIELDS = new Set(['content-length', 'content-range']);
/** The largest Age a cache sends (RFC 9111 §5.1). */
const MAX_AGE = 2 ** 31;

/** The reason phrase of a status: the standard one, never one a previous answer left on the response. */
/** Writes a stored head with the reason phrase its status calls for (none over HTTP/2, which has none). */
function writeHead(res: ServerResponse, status: number, headers: string[]): void {
  const http2 = res.req?.httpVersionMajor === 2 || res.req === undefined;
  writeFields(res, status, http2 ? undefined : (STATUS_CODES[status] ?? 'Unknown'), headers);
}

/**
 * Answers from a stored response, with its current `Age`, the cache's Cache-Status `member` and the
 * outcome header. A client whose own validators match gets 304; a GET with a single byte Range
 * gets 206 (or 416) cut from it.
 */
export function serveEntry(
  req: IncomingMessage,
  res: ServerResponse,
  entry: CachedResponse,
  ageMs: number,
  header: string | undefined,
  label: string,
  member: string | undefined,
): void {
  markCacheStatus(res, label);
  const headers = entry.headers.slice();
  headers.push('age', String(Math.min(MAX_AGE, Math.floor(ageMs / 1000))));
  // A separate field line after any stored one (an upstream cache's): the same List, ours last (RFC 9211 §2, RFC 8941 §3.1).
  if (member !== undefined) headers.push('cache-status', member);
  if (header !== undefined) headers.push(header, label);
  if (entry.status === 200 && notModified(req, entry)) {
    const kept: string[] = [];
    for (let i = 0; i < headers.length; i += 2) if (!BODY_FIELDS.has(headers[i]!)) kept.push(headers[i]!, headers[i + 1]!);
    writeHead(res, 304, kept);
    res.end();
    return;
  }
  const partial = entry.partial;
  if (req.method === 'GET' && (partial !== undefined || (entry.status === 200 && req.headers.range !== undefined))) {
    const total = partial === undefined ? entry.body.length : partial.total;
    const range = ifRangeHolds(firstValue(req.headers['if-range']), entry) ? resolveRange(req.headers.range, total) : 'whole';
    if (range === 'unsatisfiable') return sendRange(res, headers, 416, `bytes */${total}`, undefined);
    if (range !== 'whole') {
      const offset = partial === undefined ? 0 : partial.start;
      return sendRange(res, headers, 206, contentRange(range, total), entry.body.subarray(range.start - offset, range.end - offset + 1));
    }
  }
  writeHead(res, entry.status, headers);
  res.end(req.method === 'HEAD' ? undefined : entry.body);
}

function sendRange(res: ServerResponse, stored: readonly string[], status: number, range: string, body: Buffer | undefined): void {
  const headers: string[] = [];
  for (let i = 0; i < stored.length; i += 2) if (!RANGE_FIELDS.has(stored[i]!)) headers.push(stored[i]!, stored[i + 1]!);
  headers.push('content-range', range, 'content-length', String(body?.length ?? 0));
  writeHead(res, status, headers);
  res.end(body);
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Whether a stored partial response holds every byte a Range request asks for (and its If-Range,
 * if any, holds), so the cache can answer it.
 */
export function partialAnswers(req: IncomingMessage, entry: CachedResponse): boolean {
  const partial = entry.partial;
  if (partial === undefined || !ifRangeHolds(firstValue(req.headers['if-range']), entry)) return false;
  const range = resolveRange(req.headers.range, partial.total);
  return typeof range === 'object' && range.start >= partial.start && range.end <= partial.end;
}

/**
 * RFC 9110 §13.2.2: If-None-Match (weak comparison, any member of the list) wins over
 * If-Modified-Since, which compares with Last-Modified, or the response's Date when it has none
 * (RFC 9111 §4.3.2). An If-Modified-Since that is not an HTTP-date is ignored.
 */
export function notModified(req: IncomingMessage, entry: CachedResponse): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) return entry.etag !== undefined && matchesAny(ifNoneMatch, entry.etag);
  const since = parseHttpDate(req.headers['if-modified-since']);
  if (since === undefined) return false;
  const modified = entry.lastModified === undefined ? entry.date : parseHttpDate(entry.lastModified);
  return modified !== undefined && modified <= since;
}

/** Whether a list of entity-tags (or `*`) holds one weakly equal to `etag`; commas inside quotes do not split. */
export function matchesAny(list: string, etag: string): boolean {
  const tag = opaque(etag, 0, etag.length);
  const n = list.length;
  let i = 0;
  while (i < n) {
    while (i < n && (list.charCodeAt(i) === 0x20 || list.charCodeAt(i) === 0x09 || list.charCodeAt(i) === 0x2c)) i++;
    if (i >= n) break;
    const start = i;
    if (list.charCodeAt(i) === 0x57 /* W */ && list.charCodeAt(i + 1) === 0x2f /* / */) i += 2;
    if (list.charCodeAt(i) === 0x22 /* " */) {
      const close = list.indexOf('"', i + 1);
      i = close === -1 ? n : close + 1;
    } else {
      while (i < n && list.charCodeAt(i) !== 0x2c) i++;
    }
    const candidate = list.slice(start, i).trim();
    if (candidate === '*' || opaque(candidate, 0, candidate.length) === tag) return true;
  }
  return false;
}

/** The opaque part of an entity-tag: without W/ and quotes, so weak and strong forms compare equal. */
function opaque(tag: string, from: number, to: number): string {
  let start = from;
  let end = to;
  if (tag.charCodeAt(start) === 0x57 && tag.charCodeAt(start + 1) === 0x2f) start += 2;
  if (tag.charCodeAt(start) === 0x22 && end - start >= 2 && tag.charCodeAt(end - 1) === 0x22) {
    start++;
    end--;
  }
  return tag.slice(start, end);
}
