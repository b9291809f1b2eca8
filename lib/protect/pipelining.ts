import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const kWaiting = Symbol('proxy-balancer.pipelined');

type Watched = Socket & { [kWaiting]?: Set<ServerResponse> };

/**
 * A pipelined request's response waits for the ones before it and has no socket yet. When the
 * client goes away, Node emits 'close' only on the response holding the socket: the waiting ones
 * would never close, so their exchanges (in-flight counts, upstream requests, queue places) would
 * live forever. This emits 'close' on them when their connection closes, as Node does for the
 * attached one. Only called for a response without a socket, so ordinary requests pay one check.
 */
export function watchPipelined(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as Watched;
  // Gone already: Node still passes on the requests it parsed from the same read as one whose
  // handler destroyed the connection, and an app's async middleware may hand one over after the
  // connection closed. Such a response never gets a socket, nor a 'close': it closes here, so
  // `clientGone` sees it and no exchange starts for it.
  if (socket.destroyed) {
    closeWaiting(res);
    return;
  }
  let waiting = socket[kWaiting];
  if (waiting === undefined) {
    waiting = socket[kWaiting] = new Set();
    socket.once('close', onConnectionClose);
  }
  waiting.add(res);
  res.once('socket', onTurn);
}

function onTurn(this: ServerResponse, socket: Watched): void {
  // Attached now: Node itself reports this response's 'close' from here on.
  socket[kWaiting]?.delete(this);
}

function onConnectionClose(this: Watched): void {
  const waiting = this[kWaiting];
  this[kWaiting] = undefined;
  if (waiting === undefined) return;
  for (const res of waiting) {
    res.off('socket', onTurn);
    closeWaiting(res);
  }
}

function closeWaiting(res: ServerResponse): void {
  if (res.destroyed) return;
  res.destroyed = true;
  res.emit('close');
}
