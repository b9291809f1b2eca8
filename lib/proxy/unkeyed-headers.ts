import type { IncomingHttpHeaders } from 'node:http';
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
export function resolveStripHeaders(passHeaders: unknown): readonly string[] {
  if (passHeaders === undefined) return UNKEYED_HEADERS;
  const expected = `an array of names among ${UNKEYED_HEADERS.join(', ')}`;
  if (!Array.isArray(passHeaders)) fail('passHeaders', expected, passHeaders);
  for (const name of passHeaders) {
    // Lower case only: they are matched against Node's lower-cased req.headers keys.
    if (typeof name !== 'string' || !UNKEYED_HEADERS.includes(name)) fail('passHeaders', expected, name);
  }
  return Object.freeze(UNKEYED_HEADERS.filter((name) => !passHeaders.includes(name)));
}

/** Removes the `strip` headers a request carries; absent ones are not deleted (a delete makes `headers` a slow dictionary). */
export function stripUnkeyedHeaders(headers: IncomingHttpHeaders, strip: readonly string[]): void {
  for (let i = 0; i < strip.length; i++) if (headers[strip[i]!] !== undefined) delete headers[strip[i]!];
}
