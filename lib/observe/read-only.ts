import type { IncomingMessage, ServerResponse } from 'node:http';

/** Metrics and the status page are read-only: anything but GET and HEAD gets 405. Returns whether it did. */
export function refusedMethod(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  res.statusCode = 405;
  res.setHeader('allow', 'GET, HEAD');
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end('Method Not Allowed\n');
  return true;
}
