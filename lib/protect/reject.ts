import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { http2HasBody, isHttp2, drainHttp2Upload } from '../proxy/http2.js';
import { clientGone } from '../proxy/client-gone.js';
import { cutResponse } from '../proxy/errors.js';
import { answerGrpc } from '../grpc/respond.js';
import { grpcStatusForHttp, isGrpc } from '../grpc/status.js';

/** A refusal decided before any backend is touched. */
export interface Rejection {
  status: number;
  /** Plain-text body; default the status text. Never carries upstream details. */
  message?: string;
  /** Extra response headers (`Allow`, `Retry-After`, `RateLimit-*`...). */
  headers?: Readonly<Record<string, string>>;
  /** Close the connection after answering: the rest of the stream cannot be trusted or is not worth reading. */
  close?: boolean;
}

/** Whether unread request body bytes may follow the head on this connection. */
export function mayHaveBody(req: IncomingMessage): boolean {
  if (isHttp2(req)) return http2HasBody(req);
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Answers a refused request. A request whose body is still on the wire gets `Connection: close`, so
 * Node does not read (and discard) a possibly huge body just to keep the connection alive. A gRPC
 * call gets a trailers-only answer instead (its status from the rejection's, the rejection's
 * message as `grpc-message`; its extra headers are not sent: gRPC clients read none of them).
 */
export function rejectRequest(req: IncomingMessage, res: ServerResponse, rejection: Rejection): void {
  if (res.headersSent || clientGone(res)) {
    cutResponse(res);
    return;
  }
  if (isGrpc(req)) {
    const close = (rejection.close === true || mayHaveBody(req)) && !isHttp2(req);
    answerGrpc(res, grpcStatusForHttp(rejection.status), rejection.message ?? STATUS_CODES[rejection.status] ?? 'Error', close);
    return;
  }
  const body = `${rejection.message ?? STATUS_CODES[rejection.status] ?? 'Error'}\n`;
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = rejection.status;
  try {
    if (rejection.headers !== undefined) for (const name in rejection.headers) res.setHeader(name, rejection.headers[name]!);
  } catch {
    // Headers from an app filter that Node refuses (CR/LF, bad names) must not become a crash or an injection.
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = 500;
  }
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  // HTTP/2 has no connection-level header: closing one stream never costs the session.
  const h2 = isHttp2(req);
  if ((rejection.close === true || mayHaveBody(req)) && !h2) res.setHeader('connection', 'close');
  res.end(req.method === 'HEAD' ? undefined : body);
  if (h2) drainHttp2Upload(req);
}

/** Answers a refused WebSocket handshake on its raw socket, then closes it. */
export function rejectUpgrade(socket: Duplex, rejection: Rejection): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  let status = rejection.status;
  let extra = '';
  try {
    if (rejection.headers !== undefined) {
      for (const name in rejection.headers) {
        const value = rejection.headers[name]!;
        validateHeaderName(name);
        validateHeaderValue(name, value);
        extra += `${name}: ${value}\r\n`;
      }
    }
  } catch {
    status = 500;
    extra = '';
  }
  const body = `${status === rejection.status ? (rejection.message ?? STATUS_CODES[status]) : STATUS_CODES[status]}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${extra}Content-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}
