import type { IncomingMessage } from 'node:http';

type Parsed = IncomingMessage & { body?: unknown; _body?: boolean };

/**
 * The body of a request whose stream a body parser (express.json(), urlencoded(), raw(), text(),
 * body-parser, multer-less custom parsers) already consumed, re-serialised for the upstream as
 * its Content-Type says; undefined when the stream is still unread. Without this, the proxy would
 * wait for a body that never comes (http-proxy-middleware's `fixRequestBody` problem).
 */
export function parsedBody(req: IncomingMessage): Buffer | undefined {
  const parsed = req as Parsed;
  if (parsed.body === undefined || !(parsed._body === true || req.readableEnded)) return undefined;
  const body = parsed.body;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (type.includes('application/x-www-form-urlencoded')) return Buffer.from(formEncode(body as Record<string, unknown>));
  // JSON for application/json and +json types, and as the only faithful default for an object.
  return Buffer.from(JSON.stringify(body));
}

function formEncode(body: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(body ?? {})) {
    if (Array.isArray(value)) for (const v of value) params.append(key, String(v));
    else if (value !== undefined) params.append(key, typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));
  }
  return params.toString();
}
