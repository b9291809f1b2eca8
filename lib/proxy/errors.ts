import { STATUS_CODES, type ServerResponse } from 'node:http';
import { isHttp2, drainHttp2Upload } from './http2.js';
import { clientGone } from './client-gone.js';
import { answerGrpc } from '../grpc/respond.js';
import { grpcStatusForHttp, isGrpc } from '../grpc/status.js';

/** The upstream did not answer within `proxyTimeout` (idle) or `timeout` (deadline): answered with 504. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamTimeoutError';
  }
}

/** The upstream answered something that cannot be relayed as HTTP (a cut body, a head Node refuses, an unrequested 101): answered with 502. */
export class UpstreamProtocolError extends Error {
  readonly code = 'EPROTO';
  constructor(message: string, cause?: Error) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'UpstreamProtocolError';
  }
}

/**
 * The upstream provably did not process the request: its connection failed, it refused the
 * stream (REFUSED_STREAM), its GOAWAY did not include the stream, or its session closed before the
 * stream was sent. `unprocessed` tells the retry decision that any method may move to another
 * target (Envoy's `reset-before-request`/`refused-stream`, gRPC's transparent retry).
 */
export interface UnprocessedError extends Error {
  code: string;
  unprocessed: true;
}

/** The upstream sent nothing back for a stream it did not process; answered with 502 unless retried. */
export class UpstreamUnprocessedError extends Error implements UnprocessedError {
  readonly code: 'ERR_HTTP2_REFUSED_STREAM' | 'ERR_HTTP2_GOAWAY_UNPROCESSED';
  readonly unprocessed = true as const;
  constructor(code: UpstreamUnprocessedError['code'], message: string, cause?: Error) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'UpstreamUnprocessedError';
    this.code = code;
  }
}

/** Marks an error (a failed connect, keeping Node's code) as one the upstream never processed. */
export function markUnprocessed(err: Error): UnprocessedError {
  const marked = err as Error & { code?: string; unprocessed?: boolean };
  marked.code ??= 'ECONNRESET';
  marked.unprocessed = true;
  return marked as UnprocessedError;
}

export function isUnprocessed(err: Error): boolean {
  return (err as Error & { unprocessed?: boolean }).unprocessed === true;
}

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Status for a failed upstream exchange: 504 for timeouts, 502 for everything else. */
export function statusForError(err: Error): 502 | 504 {
  return TIMEOUT_CODES.has((err as NodeJS.ErrnoException).code ?? '') ? 504 : 502;
}

/**
 * Answers with a bare status page that says nothing about the upstream (no address, no error text);
 * a gRPC call gets a trailers-only answer with `grpcStatus` (by default the one for `status`).
 * Once the head is out, the only honest signal left is to cut the connection (or HTTP/2 stream), so
 * a client never takes a truncated body for a complete one.
 */
export function respondError(res: ServerResponse, status: number, retryAfter?: number, grpcStatus?: number): void {
  if (res.headersSent || clientGone(res)) {
    cutResponse(res);
    return;
  }
  if (res.req !== undefined && isGrpc(res.req)) {
    const close = res.req.complete === false && !isHttp2(res.req);
    answerGrpc(res, grpcStatus ?? grpcStatusForHttp(status), STATUS_CODES[status] ?? 'Error', close);
    return;
  }
  const body = `${STATUS_CODES[status] ?? 'Error'}\n`;
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (retryAfter !== undefined) res.setHeader('retry-after', String(retryAfter));
  // A request body still arriving would otherwise be read to its end just to keep the connection.
  // HTTP/2 has no connection-level field (Node warns); closing one stream never costs the session.
  const h2 = res.req !== undefined && isHttp2(res.req);
  if (res.req?.complete === false && !h2) res.setHeader('connection', 'close');
  res.end(res.req?.method === 'HEAD' ? undefined : body);
  if (h2) drainHttp2Upload(res.req);
}

const CUT = new Error('response cut: its upstream failed after the head was sent');

/**
 * Ends a response whose head is out without completing it. HTTP/1.1: the connection closes with no
 * terminating chunk. HTTP/2: the stream is reset (INTERNAL_ERROR), because Node's destroy() without
 * an error ends an HTTP/2 stream with END_STREAM, which a client takes for a complete response.
 */
export function cutResponse(res: ServerResponse): void {
  if (res.req !== undefined && isHttp2(res.req)) res.destroy(CUT);
  else res.destroy();
}

/**
 * A shared store (Redis) did not serve an operation: it took longer than the guard's `timeout`
 * (`ESTORETIMEOUT`), its client is reconnecting (`ESTOREOFFLINE`), too many operations are
 * waiting on it (`ESTOREBUSY`), or its circuit is open after repeated failures (`ESTOREOPEN`).
 * The request goes on without the store.
 */
export class StoreUnavailableError extends Error {
  readonly code: 'ESTORETIMEOUT' | 'ESTOREOFFLINE' | 'ESTOREBUSY' | 'ESTOREOPEN';
  constructor(code: StoreUnavailableError['code'], message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
    this.code = code;
  }
}
