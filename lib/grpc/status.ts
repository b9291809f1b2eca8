import type { IncomingMessage } from 'node:http';

// gRPC status codes (grpc's doc/statuscodes.md) the balancer answers with.
export const GRPC_CANCELLED = 1;
export const GRPC_UNKNOWN = 2;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_PERMISSION_DENIED = 7;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;
export const GRPC_UNAUTHENTICATED = 16;

/**
 * Whether a request is a gRPC call: `application/grpc`, alone or followed by `+proto`, `+json`... or
 * parameters (gRPC's PROTOCOL-HTTP2). `application/grpc-web` is not: its status travels in the body.
 */
export function isGrpc(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  if (type === undefined || type.length < 16 || !type.startsWith('application/grpc')) return false;
  if (type.length === 16) return true;
  const next = type.charCodeAt(16);
  return next === 0x2b /* + */ || next === 0x3b /* ; */;
}

/**
 * The gRPC status for an answer the balancer gives on its own with HTTP status `status`. It knows
 * why it answers, so unlike grpc's client-side table (doc/http-grpc-status-mapping.md, for
 * responses without grpc-status) a timeout is DEADLINE_EXCEEDED and a limit RESOURCE_EXHAUSTED.
 */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 401:
      return GRPC_UNAUTHENTICATED;
    case 403:
      return GRPC_PERMISSION_DENIED;
    case 404:
    case 405:
    case 501:
      return GRPC_UNIMPLEMENTED;
    case 408:
    case 504:
      return GRPC_DEADLINE_EXCEEDED;
    case 413:
    case 429:
    case 431:
      return GRPC_RESOURCE_EXHAUSTED;
    case 400:
    case 500:
      return GRPC_INTERNAL;
    case 502:
    case 503:
      return GRPC_UNAVAILABLE;
    default:
      return GRPC_UNKNOWN;
  }
}

/**
 * `grpc-message` as gRPC's PROTOCOL-HTTP2 wants it: UTF-8, every byte outside printable ASCII
 * (0x20–0x7E) and `%` itself percent-encoded.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let encoded = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    encoded += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return encoded;
}
