import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientGone } from './client-gone.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

// Node's HTTP/2 server hands a stream to the request listener as soon as nghttp2 parses its
// HEADERS, while the rest of the bytes read with it wait. A client that writes HEADERS and
// RST_STREAM together (HTTP/2 Rapid Reset, CVE-2023-44487) thus had its request sent upstream
// before the reset was seen: one backend connection opened, and destroyed, per reset stream.
// Upstream work for h2 streams starts from setImmediate instead, which runs once every read of
// this turn of the event loop has gone through nghttp2; the streams reset by then are dropped.
// One immediate serves every request held in a turn: no timer or closure per request.

let held: unknown[] = [];
let spare: unknown[] = [];
let scheduled = false;

/** Runs `handler(req, res)` once the frames read with this h2 request are processed, unless its stream has closed by then. */
export function afterFramesRead(handler: Handler, req: IncomingMessage, res: ServerResponse): void {
  held.push(handler, req, res);
  if (scheduled) return;
  scheduled = true;
  setImmediate(release);
}

function release(): void {
  scheduled = false;
  const batch = held;
  held = spare;
  try {
    for (let i = 0; i < batch.length; i += 3) {
      const res = batch[i + 2] as ServerResponse;
      if (!clientGone(res)) (batch[i] as Handler)(batch[i + 1] as IncomingMessage, res);
    }
  } finally {
    batch.length = 0;
    spare = batch;
  }
}
