import type { IncomingMessage, ServerResponse } from 'node:http';
import { exchangeOf } from '../proxy/exchange.js';
import { logProtect } from './log.js';
import { mayHaveBody, rejectRequest, type Rejection } from './reject.js';
import { cutResponse } from '../proxy/errors.js';

export const HEADERS_TOO_LARGE: Rejection = Object.freeze({ status: 431, close: true });
export const BODY_TOO_LARGE: Rejection = Object.freeze({ status: 413, close: true });

/** The request body grew past `maxBodySize` while it was streaming to the upstream. */
export class RequestTooLargeError extends Error {
  readonly code = 'ERR_BODY_TOO_LARGE';
  constructor(limit: number) {
    super(`request body over ${limit} bytes`);
    this.name = 'RequestTooLargeError';
  }
}

/** Whether the head of `req` has more than `maxBytes` bytes of fields (names, values, `: ` and CRLF). The field count is the head check's (request-head.ts). */
export function headersTooLarge(req: IncomingMessage, maxBytes: number): boolean {
  const raw = req.rawHeaders;
  let bytes = 0;
  for (let i = 0; i < raw.length; i++) bytes += raw[i]!.length;
  return bytes + (raw.length / 2) * 4 > maxBytes;
}

/** Whether a declared `Content-Length` is already over `max` (answered before any backend is touched). */
export function declaredTooLarge(req: IncomingMessage, max: number): boolean {
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > max;
}

const kBodyCount = Symbol('proxy-balancer.bodyCount');

interface BodyCount {
  res: ServerResponse;
  bytes: number;
  limit: number;
}

type Counted = IncomingMessage & { [kBodyCount]?: BodyCount };

/**
 * Counts a request body while it streams to the upstream, so neither a chunked body nor a length
 * that lies can carry more than `limit` bytes. Call right before the engine pipes the request: the
 * listener and the pipe must be attached in the same tick.
 */
export function countBody(req: IncomingMessage, res: ServerResponse, limit: number): void {
  if (!mayHaveBody(req)) return;
  (req as Counted)[kBodyCount] = { res, bytes: 0, limit };
  req.on('data', onBodyData);
}

function onBodyData(this: Counted, chunk: Buffer): void {
  const count = this[kBodyCount];
  if (count === undefined) return;
  count.bytes += chunk.length;
  if (count.bytes <= count.limit) return;
  this.off('data', onBodyData);
  this[kBodyCount] = undefined;
  const res = count.res;
  const exchange = exchangeOf(res);
  // Recorded as this exchange's failure first, so the upstream error its abort causes is not
  // blamed on the target, retried or answered 502.
  if (exchange !== undefined) {
    exchange.failed(new RequestTooLargeError(count.limit));
    exchange.proxyReq?.destroy();
  }
  if (logProtect.enabled) logProtect('413 %s %s: body over %d bytes while streaming', this.method, this.url, count.limit);
  // Once the upstream's head went out, a status can no longer be sent: cut the connection instead.
  if (res.headersSent) cutResponse(res);
  else rejectRequest(this, res, BODY_TOO_LARGE);
}

/** The methods `allowedMethods` lets through, and the 405 answer (with `Allow`) for the others. */
export class MethodFilter {
  readonly #methods: ReadonlySet<string>;
  readonly refusal: Rejection;

  constructor(methods: readonly string[]) {
    this.#methods = new Set(methods);
    this.refusal = Object.freeze({ status: 405, headers: Object.freeze({ allow: methods.join(', ') }) });
  }

  permits(method: string | undefined): boolean {
    return this.#methods.has(method ?? '');
  }
}
