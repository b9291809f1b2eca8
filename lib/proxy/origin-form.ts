import type { IncomingMessage } from 'node:http';

/**
 * Reduces an absolute-form request target (`GET http://other.example/x`) to origin-form (`/x`) so
 * it can never pick another host. False when the target is neither (`OPTIONS *`).
 */
export function toOriginForm(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  if (url.charCodeAt(0) === 0x2f /* / */) return true;
  try {
    const parsed = new URL(url);
    req.url = parsed.pathname + parsed.search;
    return true;
  } catch {
    return false;
  }
}
