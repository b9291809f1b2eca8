/**
 * Cache directives (RFC 9111 §5.2) from `Cache-Control`, or from a targeted field such as
 * `CDN-Cache-Control` (RFC 9213), which is a Structured Fields Dictionary (RFC 8941) and parsed
 * as one: the two syntaxes differ in their error handling.
 */

/** Cache directives that matter to a shared cache, parsed once per message. */
export interface Directives {
  noStore: boolean;
  /** Unqualified no-cache: revalidate before every use. */
  noCache: boolean;
  /** Fields named by a qualified `no-cache="a, b"`: not stored, the rest is (lower-case). */
  noCacheFields: readonly string[] | undefined;
  /** Unqualified private: a shared cache does not store it. */
  private: boolean;
  /** Fields named by a qualified `private="a"`: a shared cache stores the rest (lower-case). */
  privateFields: readonly string[] | undefined;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  mustUnderstand: boolean;
  onlyIfCached: boolean;
  /** Seconds (clamped to 2^31, RFC 9111 §1.2.2), or -1 when absent. An invalid max-age or s-maxage is 0: stale (§4.2.1). */
  maxAge: number;
  sMaxAge: number;
  maxStale: number;
  minFresh: number;
  staleWhileRevalidate: number;
  staleIfError: number;
}

export const NO_DIRECTIVES: Directives = Object.freeze({
  noStore: false,
  noCache: false,
  noCacheFields: undefined,
  private: false,
  privateFields: undefined,
  public: false,
  mustRevalidate: false,
  proxyRevalidate: false,
  mustUnderstand: false,
  onlyIfCached: false,
  maxAge: -1,
  sMaxAge: -1,
  maxStale: -1,
  minFresh: -1,
  staleWhileRevalidate: -1,
  staleIfError: -1,
});

const MAX_DELTA = 2 ** 31;
const SP = 0x20;
const HTAB = 0x09;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

// tchar (RFC 9110 §5.6.2): ALPHA, DIGIT and !#$%&'*+-.^_`|~
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

function isTchar(c: number): boolean {
  return c < 128 && TCHAR[c] === 1;
}

/** delta-seconds of a directive value, clamped to 2^31; -2 when it is not one (digits only). */
function deltaSeconds(value: string | undefined): number {
  if (value === undefined || value === '') return -2;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -2;
    n = Math.min(n * 10 + d, MAX_DELTA);
  }
  return n;
}

function fieldNames(list: string): string[] {
  const names: string[] = [];
  for (const part of list.split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '') names.push(name);
  }
  return names;
}

type Mutable = { -readonly [K in keyof Directives]: Directives[K] };

/**
 * Applies one directive. `value` is undefined for a bare directive; `valid` is false when its
 * syntax was broken. The first occurrence of a directive with a value wins (RFC 9111 §4.2.1).
 */
function apply(d: Mutable, name: string, value: string | undefined, valid: boolean): void {
  switch (name) {
    case 'max-age':
      if (d.maxAge === -1) d.maxAge = valid ? Math.max(0, deltaSeconds(value)) : 0;
      break;
    case 's-maxage':
      if (d.sMaxAge === -1) d.sMaxAge = valid ? Math.max(0, deltaSeconds(value)) : 0;
      break;
    case 'no-store':
      d.noStore = true;
      break;
    case 'no-cache':
      if (value === undefined) d.noCache = true;
      else d.noCacheFields = [...(d.noCacheFields ?? []), ...fieldNames(value)];
      break;
    case 'private':
      if (value === undefined) d.private = true;
      else d.privateFields = [...(d.privateFields ?? []), ...fieldNames(value)];
      break;
    case 'public':
      d.public = true;
      break;
    case 'must-revalidate':
      d.mustRevalidate = true;
      break;
    case 'proxy-revalidate':
      d.proxyRevalidate = true;
      break;
    case 'must-understand':
      d.mustUnderstand = true;
      break;
    case 'only-if-cached':
      d.onlyIfCached = true;
      break;
    // A bare max-stale accepts any staleness.
    case 'max-stale':
      if (d.maxStale === -1) d.maxStale = value === undefined ? Number.MAX_SAFE_INTEGER : Math.max(-1, deltaSeconds(value));
      break;
    case 'min-fresh':
      if (d.minFresh === -1) d.minFresh = Math.max(-1, deltaSeconds(value));
      break;
    case 'stale-while-revalidate':
      if (d.staleWhileRevalidate === -1) d.staleWhileRevalidate = Math.max(-1, deltaSeconds(value));
      break;
    case 'stale-if-error':
      if (d.staleIfError === -1) d.staleIfError = Math.max(-1, deltaSeconds(value));
      break;
  }
}

/**
 * Parses `Cache-Control` (RFC 9111 §5.2): `token [ "=" ( token / quoted-string ) ]`, comma
 * separated, names case-insensitive. Commas inside quoted strings do not split; a directive with
 * whitespace around its `=` is broken (and a broken max-age means stale); unknown directives are
 * ignored. Answers a shared frozen object when nothing relevant is present.
 */
export function parseCacheControl(header: string | string[] | undefined): Directives {
  if (header === undefined || header === '') return NO_DIRECTIVES;
  const text = Array.isArray(header) ? header.join(',') : header;
  let d: Mutable | undefined;
  const n = text.length;
  let i = 0;
  while (i < n) {
    let c = text.charCodeAt(i);
    if (c === COMMA || c === SP || c === HTAB) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && isTchar(text.charCodeAt(i))) i++;
    const name = text.slice(start, i).toLowerCase();
    let value: string | undefined;
    let valid = name !== '';
    if (i < n && text.charCodeAt(i) === EQUALS) {
      i++;
      if (i < n && text.charCodeAt(i) === DQUOTE) {
        let quoted = '';
        let closed = false;
        i++;
        while (i < n) {
          c = text.charCodeAt(i);
          if (c === BACKSLASH && i + 1 < n) {
            quoted += text[i + 1];
            i += 2;
          } else if (c === DQUOTE) {
            i++;
            closed = true;
            break;
          } else {
            quoted += text[i];
            i++;
          }
        }
        value = quoted;
        valid &&= closed;
      } else {
        const at = i;
        while (i < n && isTchar(text.charCodeAt(i))) i++;
        value = text.slice(at, i);
        valid &&= value !== '';
      }
    }
    while (i < n && (text.charCodeAt(i) === SP || text.charCodeAt(i) === HTAB)) i++;
    if (i < n && text.charCodeAt(i) !== COMMA) {
      // Trailing garbage (`max-age =1`, `max-age=1a`): skip to the next comma outside quotes.
      valid = false;
      let inQuotes = false;
      while (i < n && (inQuotes || text.charCodeAt(i) !== COMMA)) {
        if (text.charCodeAt(i) === DQUOTE) inQuotes = !inQuotes;
        i++;
      }
    }
    if (name === '') continue;
    d ??= { ...NO_DIRECTIVES };
    apply(d, name, value, valid);
  }
  return d ?? NO_DIRECTIVES;
}

// ---- targeted fields: a Structured Fields Dictionary (RFC 8941 §4.2.2)

enum Kind {
  Integer,
  Decimal,
  String,
  Token,
  Bytes,
  Boolean,
  InnerList,
}

/** A parsed SF value: its kind and, for the kinds a directive can use, its value. */
interface Item {
  kind: Kind;
  integer: number;
  text: string;
  flag: boolean;
}

class Reader {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): number {
    return this.s.charCodeAt(this.i);
  }
}

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLcalpha = (c: number): boolean => c >= 0x61 && c <= 0x7a;
const isAlpha = (c: number): boolean => isLcalpha(c) || (c >= 0x41 && c <= 0x5a);

function parseKey(r: Reader): string | undefined {
  const start = r.i;
  const first = r.peek();
  if (!(isLcalpha(first) || first === 0x2a)) return undefined;
  r.i++;
  while (!r.done) {
    const c = r.peek();
    if (!(isLcalpha(c) || isDigit(c) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x2a)) break;
    r.i++;
  }
  return r.s.slice(start, r.i);
}

function parseBareItem(r: Reader): Item | undefined {
  const c = r.peek();
  if (c === 0x2d || isDigit(c)) return parseNumber(r);
  if (c === DQUOTE) return parseString(r);
  if (isAlpha(c) || c === 0x2a) {
    const start = r.i;
    r.i++;
    while (!r.done && (isTchar(r.peek()) || r.peek() === 0x3a || r.peek() === 0x2f)) r.i++;
    return { kind: Kind.Token, integer: 0, text: r.s.slice(start, r.i), flag: false };
  }
  if (c === 0x3a) {
    r.i++;
    while (!r.done && r.peek() !== 0x3a) {
      const b = r.peek();
      if (!(isAlpha(b) || isDigit(b) || b === 0x2b || b === 0x2f || b === 0x3d)) return undefined;
      r.i++;
    }
    if (r.done) return undefined;
    r.i++;
    return { kind: Kind.Bytes, integer: 0, text: '', flag: false };
  }
  if (c === 0x3f) {
    const v = r.s.charCodeAt(r.i + 1);
    if (v !== 0x30 && v !== 0x31) return undefined;
    r.i += 2;
    return { kind: Kind.Boolean, integer: 0, text: '', flag: v === 0x31 };
  }
  return undefined;
}

function parseNumber(r: Reader): Item | undefined {
  let sign = 1;
  if (r.peek() === 0x2d) {
    sign = -1;
    r.i++;
  }
  if (r.done || !isDigit(r.peek())) return undefined;
  let intDigits = 0;
  let value = 0;
  while (!r.done && isDigit(r.peek())) {
    value = value * 10 + (r.peek() - 0x30);
    intDigits++;
    r.i++;
    if (intDigits > 15) return undefined;
  }
  if (r.done || r.peek() !== 0x2e) return { kind: Kind.Integer, integer: sign * value, text: '', flag: false };
  if (intDigits > 12) return undefined;
  r.i++;
  let fraction = 0;
  while (!r.done && isDigit(r.peek())) {
    fraction++;
    r.i++;
  }
  if (fraction < 1 || fraction > 3) return undefined;
  return { kind: Kind.Decimal, integer: 0, text: '', flag: false };
}

function parseString(r: Reader): Item | undefined {
  r.i++;
  let text = '';
  while (!r.done) {
    const c = r.peek();
    r.i++;
    if (c === BACKSLASH) {
      const next = r.peek();
      if (next !== DQUOTE && next !== BACKSLASH) return undefined;
      text += r.s[r.i];
      r.i++;
    } else if (c === DQUOTE) {
      return { kind: Kind.String, integer: 0, text, flag: false };
    } else if (c < 0x20 || c > 0x7e) {
      return undefined;
    } else {
      text += r.s[r.i - 1];
    }
  }
  return undefined;
}

/** Parameters after an item: validated, then ignored (RFC 9213 §2.1). */
function skipParameters(r: Reader): boolean {
  while (!r.done && r.peek() === 0x3b) {
    r.i++;
    while (!r.done && r.peek() === SP) r.i++;
    if (parseKey(r) === undefined) return false;
    if (!r.done && r.peek() === EQUALS) {
      r.i++;
      if (parseBareItem(r) === undefined) return false;
    }
  }
  return true;
}

function parseItemOrInnerList(r: Reader): Item | undefined {
  if (r.peek() !== 0x28) {
    const item = parseBareItem(r);
    return item !== undefined && skipParameters(r) ? item : undefined;
  }
  r.i++;
  for (;;) {
    while (!r.done && r.peek() === SP) r.i++;
    if (r.done) return undefined;
    if (r.peek() === 0x29) {
      r.i++;
      return skipParameters(r) ? { kind: Kind.InnerList, integer: 0, text: '', flag: false } : undefined;
    }
    if (parseBareItem(r) === undefined || !skipParameters(r)) return undefined;
    if (!r.done && r.peek() !== SP && r.peek() !== 0x29) return undefined;
  }
}

function applyTargeted(d: Mutable, key: string, item: Item): void {
  switch (key) {
    case 'max-age':
    case 's-maxage':
    case 'stale-while-revalidate':
    case 'stale-if-error': {
      // Values of the wrong type are not used (RFC 9213 §2.1): only a non-negative Integer is a delta.
      if (item.kind !== Kind.Integer || item.integer < 0) return;
      const seconds = Math.min(item.integer, MAX_DELTA);
      if (key === 'max-age') d.maxAge = seconds;
      else if (key === 's-maxage') d.sMaxAge = seconds;
      else if (key === 'stale-while-revalidate') d.staleWhileRevalidate = seconds;
      else d.staleIfError = seconds;
      return;
    }
    case 'no-cache':
    case 'private':
      if (item.kind === Kind.Boolean && item.flag) apply(d, key, undefined, true);
      else if (item.kind === Kind.String) apply(d, key, item.text, true);
      return;
    case 'no-store':
    case 'public':
    case 'must-revalidate':
    case 'proxy-revalidate':
    case 'must-understand':
      if (item.kind === Kind.Boolean && item.flag) apply(d, key, undefined, true);
      return;
  }
}

const TRUE: Item = { kind: Kind.Boolean, integer: 0, text: '', flag: true };

/**
 * Parses a targeted cache-control field (RFC 9213 §2.1) as a Structured Fields Dictionary.
 * Undefined when the field is empty or is not a valid Dictionary: the cache then ignores it.
 */
export function parseTargeted(header: string | string[] | undefined): Directives | undefined {
  if (header === undefined) return undefined;
  const r = new Reader(Array.isArray(header) ? header.join(', ') : header);
  while (!r.done && r.peek() === SP) r.i++;
  if (r.done) return undefined;
  const d: Mutable = { ...NO_DIRECTIVES };
  for (;;) {
    const key = parseKey(r);
    if (key === undefined) return undefined;
    let item: Item | undefined = TRUE;
    if (!r.done && r.peek() === EQUALS) {
      r.i++;
      item = parseItemOrInnerList(r);
    } else if (!skipParameters(r)) item = undefined;
    if (item === undefined) return undefined;
    applyTargeted(d, key, item);
    while (!r.done && (r.peek() === SP || r.peek() === HTAB)) r.i++;
    if (r.done) return d;
    if (r.peek() !== COMMA) return undefined;
    r.i++;
    while (!r.done && (r.peek() === SP || r.peek() === HTAB)) r.i++;
    if (r.done) return undefined;
  }
}
