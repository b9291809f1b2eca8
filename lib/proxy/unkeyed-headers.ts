import type { IncomingMessage } from 'node:http';
import { fail } from '../validate.js';

/**
 * Request headers that common backends let override the URL, method, scheme or host of a request,
 * which a shared cache keyed on the URL does not see: an answer shaped by one client's header
 * would be stored for everyone (web cache poisoning). Each is here because a widely used stack
 * honours it:
 * - `x-original-url`, `x-rewrite-url`: the path actually served (IIS URL Rewrite; Symfony before
 *   4.1 and Zend read them, CVE-2018-14773).
 * - `x-http-method-override`, `x-http-method`, `x-method-override`: the method actually run
 *   (Express `method-override`, Rack::MethodOverride, ASP.NET Web API, OData).
 * - `x-forwarded-scheme`, `x-forwarded-ssl`, `front-end-https`: the scheme of generated URLs and
 *   HTTPS redirects (Rack reads the first two, CodeIgniter and phpMyAdmin the last).
 * - `x-host`, `x-forwarded-server`: the host of generated URLs (found honoured in cache poisoning
 *   research; Apache mod_proxy sends the latter).
 * Not here: `X-Forwarded-Host/-Proto/-Port/-Prefix` and `Forwarded`, which the balancer writes
 * itself (lib/proxy/forwarded.ts); headers a backend only logs or reads for the client address
 * (`X-Real-IP`, `True-Client-IP`), which cannot change a shared response's content and are handled
 * there too.
 */
export const UNKEYED_HEADERS: readonly string[] = Object.freeze([
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'front-end-https',
  'x-host',
  'x-forwarded-server',
]);

/** The headers of `UNKEYED_HEADERS` to strip: all but those `passHeaders` lets through. Throws a TypeError for a bad list. */
export function resolveStripHeaders(passHeaders: unknown): ReadonlySet<string> {
  if (passHeaders === undefined) return new Set(UNKEYED_HEADERS);
  const expected = `an array of names among ${UNKEYED_HEADERS.join(', ')}`;
  if (!Array.isArray(passHeaders)) fail('passHeaders', expected, passHeaders);
  for (const name of passHeaders) {
    // Lower case only: they are matched against Node's lower-cased req.headers keys.
    if (typeof name !== 'string' || !UNKEYED_HEADERS.includes(name)) fail('passHeaders', expected, name);
  }
  return new Set(UNKEYED_HEADERS.filter((name) => !passHeaders.includes(name)));
}

/**
 * Fields whose underscore spelling a backend may read as the field itself: CGI-style servers map
 * `X-Forwarded-Host` and `X_Forwarded_Host` alike to `HTTP_X_FORWARDED_HOST` (so do PHP's, and WSGI
 * servers before gunicorn 22), where the later one may win. A client could then set what the
 * balancer writes or strips. NGINX drops every underscored name (`underscores_in_headers off`);
 * only the twins of these are dropped here, so an app's own `X_Api_Key` still passes.
 */
const UNDERSCORE_GUARDED: ReadonlySet<string> = new Set([
  ...UNKEYED_HEADERS,
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'true-client-ip',
  'forwarded',
  'host',
  'content-length',
  'transfer-encoding',
]);

/**
 * Removes the `strip` headers a request carries, and the underscore twins of every header the
 * balancer writes or strips. One pass over the raw field names: only a name starting with `x` or
 * `f` (every stripped one does) or holding an underscore is looked at further, so an ordinary
 * request costs a character test per field and no lookup of `req.headers` by a varying key: a
 * lookup per stripped name made V8's megamorphic keyed load cost about 1,500 more instructions a
 * request (callgrind, lib-bare).
 */
export function stripUnkeyedHeaders(req: IncomingMessage, strip: ReadonlySet<string>): void {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x78 /* x */ || first === 0x66 /* f */ || name.indexOf('_') !== -1) dropIfStripped(req, name, strip);
  }
}

function dropIfStripped(req: IncomingMessage, name: string, strip: ReadonlySet<string>): void {
  const lower = name.toLowerCase();
  const headers = req.headers;
  if (headers[lower] === undefined) return;
  if (strip.has(lower) || (lower.indexOf('_') !== -1 && UNDERSCORE_GUARDED.has(lower.replaceAll('_', '-')))) delete headers[lower];
}
