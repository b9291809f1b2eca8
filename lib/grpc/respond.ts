import type { ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { encodeGrpcMessage } from './status.js';

type Http2Response = ServerResponse & { stream?: ServerHttp2Stream };

/**
 * Answers a gRPC call the balancer refuses or fails as a trailers-only response (gRPC's
 * PROTOCOL-HTTP2): status 200, `content-type: application/grpc`, `grpc-status` and `grpc-message`,
 * nothing else. Over HTTP/2 that is one HEADERS frame ending the stream: the compat API's
 * `res.end()` would send an empty DATA frame for the end, which some clients take for a message.
 * `close` asks an HTTP/1.1 client's connection to close (a body is still on the wire).
 */
export function answerGrpc(res: ServerResponse, status: number, message: string, close: boolean): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusCode = 200;
  const stream = (res as Http2Response).stream;
  const grpcMessage = encodeGrpcMessage(message);
  if (stream !== undefined) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': grpcMessage }, { endStream: true });
    return;
  }
  res.setHeader('content-type', 'application/grpc');
  res.setHeader('grpc-status', String(status));
  res.setHeader('grpc-message', grpcMessage);
  res.setHeader('content-length', 0);
  if (close) res.setHeader('connection', 'close');
  res.end();
}
