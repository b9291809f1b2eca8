import { fail } from '../validate.js';

/** `cookieDomainRewrite`/`cookiePathRewrite`: one replacement for every value, or a map from value to replacement (`'*'` for any other); `''` removes the attribute. */
export type CookieRewrite = false | string | Readonly<Record<string, string>>;

/** One attribute's rewrite, resolved: replacements by value, and the one for any other value. */
interface AttributeRewrite {
  readonly byValue: ReadonlyMap<string, string>;
  readonly any: string | undefined;
  /** Domains compare case-insensitively and without a leading dot (RFC 6265 §5.2.3); paths exactly. */
  readonly domain: boolean;
}

/** The resolved cookie options: undefined when neither is set, so relaying costs nothing then. */
export interface CookieRewriter {
  readonly domain: AttributeRewrite | undefined;
  readonly path: AttributeRewrite | undefined;
}

/** Checks and resolves both options; throws a TypeError naming the bad one. */
export function resolveCookieRewrite(domain: unknown, path: unknown): CookieRewriter | undefined {
  const resolvedDomain = resolveAttribute('cookieDomainRewrite', domain, true);
  const resolvedPath = resolveAttribute('cookiePathRewrite', path, false);
  return resolvedDomain === undefined && resolvedPath === undefined ? undefined : { domain: resolvedDomain, path: resolvedPath };
}

function resolveAttribute(option: string, value: unknown, domain: boolean): AttributeRewrite | undefined {
  if (value === undefined || value === false) return undefined;
  const expected = "false, a string, or an object mapping values to replacements ('*' for any, '' to remove)";
  if (typeof value === 'string') return { byValue: new Map(), any: attributeValue(option, value), domain };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(option, expected, value);
  const byValue = new Map<string, string>();
  let any: string | undefined;
  for (const [from, to] of Object.entries(value)) {
    if (typeof to !== 'string') fail(`${option}[${JSON.stringify(from)}]`, 'a string', to);
    const replacement = attributeValue(`${option}[${JSON.stringify(from)}]`, to);
    if (from === '*') any = replacement;
    else byValue.set(domain ? domainKey(from) : from, replacement);
  }
  return { byValue, any, domain };
}

// The replacement goes into a Set-Cookie field as it is: no ';' (it would start another
// attribute), no controls, no whitespace at the ends (RFC 6265 trims it away).
function attributeValue(option: string, value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x3b /* ; */ || c > 0xff) fail(option, 'a cookie attribute value (no ";" or control characters)', value);
  }
  if (value.trim() !== value) fail(option, 'a cookie attribute value without surrounding whitespace', value);
  return value;
}

function domainKey(domain: string): string {
  const lower = domain.toLowerCase();
  return lower.charCodeAt(0) === 0x2e /* . */ ? lower.slice(1) : lower;
}

/**
 * One `Set-Cookie` value with its `Domain` and `Path` attributes rewritten; a cookie without the
 * attribute, or whose value no rule names, comes back unchanged (none is added). The cookie's
 * name, value and other attributes keep their bytes.
 */
export function rewriteSetCookie(cookie: string, rewriter: CookieRewriter): string {
  // The name=value pair comes first and may hold neither "domain" nor "path" as an attribute.
  let start = cookie.indexOf(';');
  if (start === -1) return cookie;
  let out: string | undefined;
  let copied = 0;
  while (start !== -1) {
    const end = cookie.indexOf(';', start + 1);
    const stop = end === -1 ? cookie.length : end;
    const replaced = rewriteAttribute(cookie, start + 1, stop, rewriter);
    if (replaced !== undefined) {
      out = (out ?? '') + cookie.slice(copied, replaced === '' ? start : start + 1) + replaced;
      copied = stop;
    }
    start = end;
  }
  return out === undefined ? cookie : out + cookie.slice(copied);
}

/** The new text of the attribute in `cookie[from, to)` (`''` to drop it with its ';'), or undefined to keep it. */
function rewriteAttribute(cookie: string, from: number, to: number, rewriter: CookieRewriter): string | undefined {
  const eq = cookie.indexOf('=', from);
  if (eq === -1 || eq >= to) return undefined;
  const name = cookie.slice(from, eq).trim().toLowerCase();
  const rule = name === 'domain' ? rewriter.domain : name === 'path' ? rewriter.path : undefined;
  if (rule === undefined) return undefined;
  const value = cookie.slice(eq + 1, to).trim();
  const replacement = rule.byValue.get(rule.domain ? domainKey(value) : value) ?? rule.any;
  if (replacement === undefined) return undefined;
  if (replacement === '') return '';
  // The attribute's own spelling and spacing before the '=' stay as the backend wrote them.
  return `${cookie.slice(from, eq)}=${replacement}`;
}
