import { OutgoingMessage, type ServerResponse } from 'node:http';

type OutHeaders = Record<string, [string, string | number | readonly string[]]>;

// Node keeps the fields set with setHeader in an internal table (lower-case name → [name, value]).
// When it holds any, writeHead(status, fields) takes a slow path that merges with setHeader, one
// value per name on Node 20. Reading that table once lets the balancer hand writeHead one merged
// list instead. Found by its description; if a Node version renames it, the public API is used.
const kOutHeaders: symbol | undefined = (() => {
  const probe = new OutgoingMessage();
  probe.setHeader('x-probe', '1');
  return Object.getOwnPropertySymbols(probe).find((s) => s.description === 'kOutHeaders');
})();

/**
 * `res.writeHead(status, reason, fields)` for a flat field list that may repeat names (several
 * Set-Cookie), merged with fields set on `res` before (an app's CORS headers, Express's
 * X-Powered-By, the cache's X-Cache): a listed name replaces the earlier field, every repeat is
 * kept. Throws what Node throws for a status, name or value it will not write. No reason over
 * HTTP/2 (`undefined`).
 */
export function writeHead(res: ServerResponse, status: number, reason: string | undefined, fields: readonly string[]): void {
  const own =
    kOutHeaders === undefined || res.req?.httpVersionMajor === 2 ? undefined : (res as unknown as Record<symbol, OutHeaders | null | undefined>)[kOutHeaders];
  if (own === null || (own === undefined && res.getHeaderNames().length === 0)) {
    plainWriteHead(res, status, reason, fields as string[]);
    return;
  }
  if (own === undefined) {
    // HTTP/2's compat response, or a Node without the table: the public API merges.
    for (let i = 0; i < fields.length; i += 2) res.removeHeader(fields[i]!);
    for (let i = 0; i < fields.length; i += 2) res.appendHeader(fields[i]!, fields[i + 1]!);
    if (reason === undefined) res.writeHead(status);
    else res.writeHead(status, reason);
    return;
  }
  const merged: string[] = [];
  for (const key in own) {
    if (lists(fields, key)) continue;
    const [name, value] = own[key]!;
    if (Array.isArray(value)) for (const item of value) merged.push(name, String(item));
    else merged.push(name, String(value));
  }
  for (let i = 0; i < fields.length; i++) merged.push(fields[i]!);
  (res as unknown as Record<symbol, OutHeaders | null>)[kOutHeaders!] = null;
  plainWriteHead(res, status, reason, merged);
}

function plainWriteHead(res: ServerResponse, status: number, reason: string | undefined, fields: string[]): void {
  if (reason === undefined) res.writeHead(status, fields);
  else res.writeHead(status, reason, fields);
}

/** Whether `fields` names `key` (lower case); the preset fields are few, so a scan beats a Set. */
function lists(fields: readonly string[], key: string): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name.length === key.length && name.toLowerCase() === key) return true;
  }
  return false;
}
