import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';

type Http2Response = ServerResponse & { stream?: ServerHttp2Stream };

/**
 * Whether an upstream response is a gRPC trailers-only one: its HEADERS frame ended the stream and
 * carries `grpc-status` (an error answered at once). Only the HTTP/2 engine's responses can be.
 */
export function isTrailersOnly(proxyRes: IncomingMessage): boolean {
  return (proxyRes as IncomingMessage & { headEnded?: boolean }).headEnded === true && proxyRes.headers['grpc-status'] !== undefined;
}

/**
 * Relays a trailers-only response to an HTTP/2 client as one: a single HEADERS frame that ends the
 * stream. Written as head and end through the compat API it would become HEADERS then an empty
 * DATA frame, after which a gRPC client waits for trailers that never come (grpc-js: INTERNAL,
 * "Call ended without gRPC status"). False when it could not be written (fields Node refuses).
 */
export function relayTrailersOnly(res: ServerResponse, status: number, fields: readonly string[]): boolean {
  const stream = (res as Http2Response).stream;
  if (stream === undefined) return false;
  const headers: OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!.toLowerCase();
    const value = fields[i + 1]!;
    const seen = headers[name];
    headers[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [String(seen), value];
  }
  try {
    stream.respond(headers, { endStream: true });
  } catch {
    return false;
  }
  res.statusCode = status;
  return true;
}
