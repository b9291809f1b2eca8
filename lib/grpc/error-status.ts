import { isUnprocessed, UpstreamProtocolError, UpstreamTimeoutError } from '../proxy/errors.js';
import {
  GRPC_CANCELLED,
  GRPC_DEADLINE_EXCEEDED,
  GRPC_INTERNAL,
  GRPC_PERMISSION_DENIED,
  GRPC_RESOURCE_EXHAUSTED,
  GRPC_UNAVAILABLE,
  grpcStatusForHttp,
} from './status.js';

/** Connection-level failures: the call never got an answer because the connection failed (what a gRPC client itself reports as UNAVAILABLE). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_SESSION_ERROR',
]);

/** RST_STREAM codes with a gRPC meaning of their own (PROTOCOL-HTTP2 "Errors"); every other code is INTERNAL. */
const RESET_STATUS: Readonly<Record<string, number>> = {
  NGHTTP2_REFUSED_STREAM: GRPC_UNAVAILABLE,
  NGHTTP2_CANCEL: GRPC_CANCELLED,
  NGHTTP2_ENHANCE_YOUR_CALM: GRPC_RESOURCE_EXHAUSTED,
  NGHTTP2_INADEQUATE_SECURITY: GRPC_PERMISSION_DENIED,
};

/**
 * The gRPC status for a call whose upstream exchange failed with `err` (answered `status` over
 * plain HTTP): UNAVAILABLE when the upstream never saw it or its connection failed, DEADLINE_EXCEEDED
 * on a timeout, INTERNAL for a broken upstream (a response Node refuses, a stream reset, a cut body).
 */
export function grpcStatusForError(err: Error, status: number): number {
  if (isUnprocessed(err)) return GRPC_UNAVAILABLE;
  if (err instanceof UpstreamTimeoutError || status === 504) return GRPC_DEADLINE_EXCEEDED;
  if (err instanceof UpstreamProtocolError) return GRPC_INTERNAL;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (CONNECTION_CODES.has(code)) return GRPC_UNAVAILABLE;
  if (code === 'ERR_HTTP2_STREAM_ERROR') {
    // Node names the reset code only in the message: 'Stream closed with error code NGHTTP2_...'.
    const name = /NGHTTP2_[A-Z_]+/.exec(err.message)?.[0];
    return (name !== undefined ? RESET_STATUS[name] : undefined) ?? GRPC_INTERNAL;
  }
  return status === 502 ? GRPC_INTERNAL : grpcStatusForHttp(status);
}
