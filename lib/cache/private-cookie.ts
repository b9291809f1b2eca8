import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

const kPrivate = Symbol('proxy-balancer.private-set-cookie');
type Marked = ServerResponse & { [kPrivate]?: string };

/**
 * Marks one Set-Cookie field value of `res` as this client's own (the balancer's affinity cookie):
 * it reaches the client, but a shared cache neither stores it nor refuses the response for it.
 */
export function markPrivateCookie(res: ServerResponse, cookie: string): void {
  (res as Marked)[kPrivate] = cookie;
}

/** `res`'s header fields as a shared cache sees them: without the Set-Cookie value marked private. */
export function sharedHeaders(res: ServerResponse): OutgoingHttpHeaders {
  const headers = res.getHeaders();
  const own = (res as Marked)[kPrivate];
  if (own === undefined) return headers;
  const cookies = headers['set-cookie'];
  const rest = Array.isArray(cookies) ? cookies.filter((c) => c !== own) : cookies === own ? [] : cookies;
  // getHeaders() returns a copy: the response keeps its cookie.
  headers['set-cookie'] = Array.isArray(rest) && rest.length === 0 ? undefined : rest;
  return headers;
}
