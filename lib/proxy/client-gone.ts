import type { ServerResponse } from 'node:http';

type MaybeHttp2 = ServerResponse & { stream?: { closed: boolean; destroyed: boolean } | null };

/**
 * Whether the client of `res` is gone. HTTP/1's response says so itself; HTTP/2's compat response
 * has no `destroyed` (it reads undefined), its stream does, and a stream closed or reset is gone
 * too: a check of `res.destroyed` alone would take every reset h2 stream for a client still waiting.
 */
export function clientGone(res: ServerResponse): boolean {
  if (res.destroyed) return true;
  const stream = (res as MaybeHttp2).stream;
  return stream !== undefined && (stream === null || stream.closed || stream.destroyed);
}
