import { parseHttpDate } from './http-date.js';
import type { CachedResponse } from './store.js';

/** A byte range, both ends inclusive (RFC 9110 §14.1.1). */
export interface ByteRange {
  start: number;
  end: number;
}

/** What a Range request asks of a representation of `length` bytes. */
export type RangeAnswer = ByteRange | 'whole' | 'unsatisfiable';

function digitsAt(text: string, from: number, to: number): number {
  if (from >= to) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Resolves a Range header against a representation of `length` bytes: one byte range
 * (`first-last`, `first-`, `-suffix`) gives the bytes to send; several ranges, another unit or a
 * malformed value give 'whole' (a server may ignore Range, RFC 9110 §14.2); a range starting past
 * the end, or an empty suffix, is 'unsatisfiable' (416).
 */
export function resolveRange(header: string | undefined, length: number): RangeAnswer {
  if (header === undefined) return 'whole';
  const eq = header.indexOf('=');
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return 'whole';
  const spec = header.slice(eq + 1).trim();
  if (spec.includes(',')) return 'whole';
  const dash = spec.indexOf('-');
  if (dash === -1) return 'whole';
  if (dash === 0) {
    const suffix = digitsAt(spec, 1, spec.length);
    if (suffix < 0) return 'whole';
    if (suffix === 0 || length === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - suffix), end: length - 1 };
  }
  const first = digitsAt(spec, 0, dash);
  const last = dash === spec.length - 1 ? Number.POSITIVE_INFINITY : digitsAt(spec, dash + 1, spec.length);
  if (first < 0 || last < 0 || last < first) return 'whole';
  if (first >= length) return 'unsatisfiable';
  return { start: first, end: Math.min(last, length - 1) };
}

/** `Content-Range: bytes first-last/complete` of a 206 (RFC 9110 §14.4), with a known complete length. */
export function parseContentRange(value: unknown): (ByteRange & { total: number }) | undefined {
  if (typeof value !== 'string' || !value.startsWith('bytes ')) return undefined;
  const dash = value.indexOf('-', 6);
  const slash = value.indexOf('/', dash);
  if (dash === -1 || slash === -1) return undefined;
  const start = digitsAt(value, 6, dash);
  const end = digitsAt(value, dash + 1, slash);
  const total = digitsAt(value, slash + 1, value.length);
  if (start < 0 || end < start || total <= end) return undefined;
  return { start, end, total };
}

/**
 * Whether If-Range lets a range be served from `entry` (RFC 9110 §13.1.5): an entity-tag must
 * equal the entry's strong ETag; a date must equal its Last-Modified, itself a strong validator
 * (at least a second before the response's Date).
 */
export function ifRangeHolds(value: string | undefined, entry: CachedResponse): boolean {
  if (value === undefined) return true;
  const tag = value.trim();
  if (tag.startsWith('"') || tag.startsWith('W/'))
    return !tag.startsWith('W/') && entry.etag !== undefined && !entry.etag.startsWith('W/') && entry.etag === tag;
  const since = parseHttpDate(tag);
  const modified = parseHttpDate(entry.lastModified);
  return since !== undefined && modified !== undefined && since === modified && modified <= entry.date - 1000;
}

export function contentRange(range: ByteRange, total: number): string {
  return `bytes ${range.start}-${range.end}/${total}`;
}
