import type { IncomingMessage, ServerResponse } from 'node:http';
import { markCacheStatus } from './status.js';
import type { CachedResponse } from './store.js';

/** Fields a 304 leaves out: they describe a body it does not carry. */
const BODY_FIELDS = new Set(['content-length', 'content-type', 'content-encoding', 'content-range', 'transfer-encoding']);

/**
 * Answers from a stored response, with its current `Age` and the outcome header. A client whose
 * own validators match gets 304.
 */
export function serveEntry(req: IncomingMessage, res: ServerResponse, entry: CachedResponse, ageMs: number, header: string | undefined, label: string): void {
  markCacheStatus(res, label);
  const headers = entry.headers.slice();
  headers.push('age', String(Math.floor(ageMs / 1000)));
  if (header !== undefined) headers.push(header, label);
  if (entry.status === 200 && notModified(req, entry)) {
    const kept: string[] = [];
    for (let i = 0; i < headers.length; i += 2) if (!BODY_FIELDS.has(headers[i]!)) kept.push(headers[i]!, headers[i + 1]!);
    res.writeHead(304, kept);
    res.end();
    return;
  }
  res.writeHead(entry.status, headers);
  res.end(req.method === 'HEAD' ? undefined : entry.body);
}

/** RFC 9110 §13.1: If-None-Match (weak comparison) wins over If-Modified-Since. */
export function notModified(req: IncomingMessage, entry: CachedResponse): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (entry.etag === undefined) return false;
    const tag = weak(entry.etag);
    for (const candidate of ifNoneMatch.split(',')) {
      const value = candidate.trim();
      if (value === '*' || weak(value) === tag) return true;
    }
    return false;
  }
  const since = req.headers['if-modified-since'];
  if (since === undefined || entry.lastModified === undefined) return false;
  const sinceMs = Date.parse(since);
  const modified = Date.parse(entry.lastModified);
  return !Number.isNaN(sinceMs) && !Number.isNaN(modified) && modified <= sinceMs;
}

function weak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
