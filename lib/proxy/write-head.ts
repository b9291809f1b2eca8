import type { ServerResponse } from 'node:http';

/**
 * `res.writeHead(status, reason, fields)` for a flat field list that may repeat names (several
 * Set-Cookie). Fields set on `res` before (an app's CORS headers, the cache's X-Cache) make Node
 * merge through setHeader, which on Node 20 keeps one value per name: the merge happens here
 * instead, a listed name replacing the earlier field and every repeat kept. Throws what Node
 * throws for a status, name or value it will not write. No reason over HTTP/2 (`undefined`).
 */
export function writeHead(res: ServerResponse, status: number, reason: string | undefined, fields: readonly string[]): void {
  if (res.getHeaderNames().length > 0) {
    for (let i = 0; i < fields.length; i += 2) res.removeHeader(fields[i]!);
    for (let i = 0; i < fields.length; i += 2) res.appendHeader(fields[i]!, fields[i + 1]!);
    if (reason === undefined) res.writeHead(status);
    else res.writeHead(status, reason);
  } else if (reason === undefined) res.writeHead(status, fields as string[]);
  else res.writeHead(status, reason, fields as string[]);
}
