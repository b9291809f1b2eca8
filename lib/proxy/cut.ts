import type { ServerResponse } from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';

type Http2Response = ServerResponse & { stream?: ServerHttp2Stream | null };

/**
 * Ends a response that can no longer be completed so its client sees an error, never a clean end:
 * HTTP/1 loses its connection; an HTTP/2 stream is reset with INTERNAL_ERROR. Destroying the compat
 * response alone resets it with NO_ERROR, which an h2 client (a gRPC one included) may take for a
 * finished response.
 */
export function cutResponse(res: ServerResponse): void {
  const stream = (res as Http2Response).stream;
  if (stream != null && !stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  res.destroy();
}
