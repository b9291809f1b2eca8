/**
 * The one HTTP-date parser of the cache (RFC 9110 §5.6.7), for Date, Expires, Last-Modified,
 * If-Modified-Since and If-Range. It accepts exactly the three formats a recipient must:
 *
 *   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
 *   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
 *   asctime      Sun Nov  6 08:49:37 1994
 *
 * Day, month and zone names match case-insensitively, as RFC 9111 §4.2 asks of caches; anything
 * else (`0`, another zone, a missing comma, extra spaces, dashes in an IMF-fixdate, a one-digit
 * hour, ISO 8601...) is invalid, which for Expires means already expired (§5.3). `Date.parse`
 * accepts all of those, so it is never used on a header value.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const LONG_DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** Milliseconds since the epoch of an HTTP-date, or undefined when `value` is not one. */
export function parseHttpDate(value: string | string[] | undefined): number | undefined {
  // A field repeated on several lines is not a date.
  if (typeof value !== 'string') return undefined;
  const comma = value.indexOf(',');
  if (comma === 3) return imfFixdate(value);
  if (comma > 5) return rfc850(value, comma);
  if (comma === -1) return asctime(value);
  return undefined;
}

// Sun, 06 Nov 1994 08:49:37 GMT
function imfFixdate(v: string): number | undefined {
  if (v.length !== 29 || !isDay(v, 0, DAYS) || v[4] !== ' ' || v[7] !== ' ' || v[11] !== ' ' || v[16] !== ' ' || v[25] !== ' ') return undefined;
  if (!isGmt(v, 26)) return undefined;
  return build(digits(v, 12, 4), month(v, 8), digits(v, 5, 2), v, 17);
}

// Sunday, 06-Nov-94 08:49:37 GMT
function rfc850(v: string, comma: number): number | undefined {
  if (v.length !== comma + 24 || !isLongDay(v, comma) || v[comma + 1] !== ' ' || v[comma + 4] !== '-' || v[comma + 8] !== '-' || v[comma + 11] !== ' ')
    return undefined;
  if (v[comma + 20] !== ' ' || !isGmt(v, comma + 21)) return undefined;
  const yy = digits(v, comma + 9, 2);
  if (yy < 0) return undefined;
  // A two-digit year more than 50 years ahead is the most recent past year with those digits (RFC 9110 §5.6.7).
  const now = new Date().getUTCFullYear();
  let year = Math.floor(now / 100) * 100 + yy;
  if (year > now + 50) year -= 100;
  return build(year, month(v, comma + 5), digits(v, comma + 2, 2), v, comma + 12);
}

// Sun Nov  6 08:49:37 1994
function asctime(v: string): number | undefined {
  if (v.length !== 24 || !isDay(v, 0, DAYS) || v[3] !== ' ' || v[7] !== ' ' || v[10] !== ' ' || v[19] !== ' ') return undefined;
  const day = v[8] === ' ' ? digits(v, 9, 1) : digits(v, 8, 2);
  return build(digits(v, 20, 4), month(v, 4), day, v, 11);
}

/** The time of day at `at` (HH:MM:SS) plus the date parts, validated, as ms since the epoch. */
function build(year: number, monthIndex: number, day: number, v: string, at: number): number | undefined {
  if (v[at + 2] !== ':' || v[at + 5] !== ':') return undefined;
  const hour = digits(v, at, 2);
  const minute = digits(v, at + 3, 2);
  const second = digits(v, at + 6, 2);
  if (year < 0 || monthIndex < 0 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return undefined;
  const ms = Date.UTC(year, monthIndex, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 Feb over into March: such a day does not exist.
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** The non-negative integer of exactly `count` ASCII digits at `at`, or -1. */
function digits(v: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const c = v.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

function month(v: string, at: number): number {
  return MONTHS.indexOf(v.slice(at, at + 3).toLowerCase());
}

function isDay(v: string, at: number, names: readonly string[]): boolean {
  return names.includes(v.slice(at, at + 3).toLowerCase());
}

function isLongDay(v: string, end: number): boolean {
  return LONG_DAYS.includes(v.slice(0, end).toLowerCase());
}

function isGmt(v: string, at: number): boolean {
  return v.length === at + 3 && v.slice(at).toLowerCase() === 'gmt';
}
