import type { ServerResponse } from 'node:http';
import { UpstreamTimeoutError } from './errors.js';
import { type Exchange, exchangeOf } from './exchange.js';
import { clampDelay } from '../timer.js';

// Timers and the client's 'close' of an exchange: shared functions taking the exchange as their
// argument or reading it off `this`, so arming them costs no closure per request.

/** Abandons this attempt (to be retried) when its response head is not in after `ms`. */
export function armTryTimeout(exchange: Exchange, ms: number): void {
  exchange.tryTimer = setTimeout(onTryTimeout, clampDelay(ms), exchange);
}

/** Answers 504 when the response head of the request (whichever attempt) is not in after `ms`. */
export function armDeadline(exchange: Exchange, ms: number): void {
  exchange.deadline = setTimeout(onDeadline, clampDelay(ms), exchange);
}

/** Ends the exchange when the client response closes, stopping upstream work the client no longer waits for. */
export function watchClientResponse(res: ServerResponse): void {
  res.on('close', onClientClose);
}

function onTryTimeout(exchange: Exchange): void {
  exchange.tryTimer = undefined;
  if (exchange.proxyReq === undefined) exchange.tryExpired = true;
  else exchange.proxyReq.destroy(new UpstreamTimeoutError('per-try timeout'));
}

function onDeadline(first: Exchange): void {
  // The timer was armed for the first attempt; a retry may be the one running now.
  const current = exchangeOf(first.client) ?? first;
  current.deadline = undefined;
  current.pastDeadline = true;
  const err = new UpstreamTimeoutError('upstream response deadline');
  if (current.proxyReq !== undefined) {
    current.proxyReq.destroy(err);
    return;
  }
  // Still waiting for a socket, or a retry still in its back-off: answer now; the engine's
  // request, when it comes, is dropped. A retry never sent is no failure of its target.
  if (current.failed(err)) {
    if (current.backoff === undefined) current.target.errors++;
    current.owner.answerFailure(current, err, 504);
  }
}

function onClientClose(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  const proxyReq = exchange.proxyReq;
  // The client left before the response was complete: stop the upstream work too. And a target
  // that answered before reading the whole request body (an early 413) would otherwise hold the
  // upload, and its connection, for ever: that connection cannot be reused anyway. (An HTTP/2
  // response reset by its client counts as writableFinished, never as writableEnded.)
  const delivered = this.writableEnded && this.writableFinished;
  if (proxyReq !== undefined && ((!delivered && exchange.proxyRes?.complete !== true) || !proxyReq.writableFinished)) proxyReq.destroy();
  exchange.owner.finish(exchange);
}
