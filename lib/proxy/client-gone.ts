import type { ServerResponse } from 'node:http';

/**
 * Whether the client of `res` is gone. HTTP/1's response says so itself; HTTP/2's compat response
 * has no `destroyed` (it reads undefined), its stream does: a check of `res.destroyed` alone would
 * take every reset h2 stream for a client still waiting.
 */
export function clientGone(res: ServerResponse): boolean {
  return res.destroyed || (res as { stream?: { destroyed: boolean } }).stream?.destroyed === true;
}
