import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Target } from '../target.js';
import { clampDelay } from '../timer.js';
import { logProtect } from './log.js';
import { rejectRequest, type Rejection } from './reject.js';
import { clientGone } from '../proxy/client-gone.js';

/** What the queue hands a request back to once a slot frees up. */
export interface QueueOwner {
  /** Sends the request to `target` now (its slot is free). */
  dispatch(target: Target, req: IncomingMessage, res: ServerResponse): void;
  /** Chooses again for a request whose target left rotation while it waited. */
  proxy(req: IncomingMessage, res: ServerResponse): void;
  /** Whether `target` may still take traffic (in the ready snapshot). */
  eligible(target: Target): boolean;
}

export interface ConnectionQueueOptions {
  maxConnections: number;
  maxQueue: number;
  queueTimeout: number;
  /** Queued requests allowed over the whole pool; 0 for no cap beyond `maxQueue` per target. */
  maxPending: number;
  retryAfter: number;
}

/** A request waiting for a connection slot. */
export interface Waiting {
  queue: ConnectionQueue;
  req: IncomingMessage;
  res: ServerResponse;
  target: Target;
  timer: NodeJS.Timeout | undefined;
  line: Line;
  prev: Waiting | undefined;
  next: Waiting | undefined;
}

/** One target's FIFO of waiting requests: a linked list, so a client leaving mid-queue is unlinked in O(1). */
interface Line {
  head: Waiting | undefined;
  tail: Waiting | undefined;
  length: number;
}

const kWaiting = Symbol('proxy-balancer.waiting');
type Holder = ServerResponse & { [kWaiting]?: Waiting };

/**
 * HAProxy's `maxconn` with its queue: at most `maxConnections` requests (and tunnels) in flight per
 * target; the next ones wait in that target's queue, at most `maxQueue` of them and `queueTimeout`
 * ms each, then get 503. A slow backend sees a steady number of requests instead of a pile-up.
 */
export class ConnectionQueue {
  readonly #options: ConnectionQueueOptions;
  readonly #owner: QueueOwner;
  readonly #lines = new Map<Target, Line>();
  readonly #full: Rejection;
  #pending = 0;

  constructor(options: ConnectionQueueOptions, owner: QueueOwner) {
    this.#options = options;
    this.#owner = owner;
    this.#full = Object.freeze({ status: 503, headers: Object.freeze({ 'retry-after': String(options.retryAfter) }) });
  }

  /** Requests waiting now, over all targets. */
  get pending(): number {
    return this.#pending;
  }

  /** Requests waiting for `target`. */
  waiting(target: Target): number {
    return this.#lines.get(target)?.length ?? 0;
  }

  /** Whether `target` has a free slot. */
  hasRoom(target: Target): boolean {
    return target.inFlight < this.#options.maxConnections;
  }

  /**
   * Lets the request through (true) when `target` has a free slot; otherwise queues it or, when
   * the queue is full, answers 503 (false either way: the queue owns the request now).
   */
  admit(target: Target, req: IncomingMessage, res: ServerResponse): boolean {
    if (target.inFlight < this.#options.maxConnections) return true;
    // A client already gone would never report leaving: it takes no place in the queue.
    if (clientGone(res)) return false;
    const line = this.#lines.get(target) ?? this.#newLine(target);
    const { maxQueue, maxPending } = this.#options;
    if (line.length >= maxQueue || (maxPending > 0 && this.#pending >= maxPending)) {
      if (logProtect.enabled) logProtect('503 %s %s: %s full (%d in flight, %d queued)', req.method, req.url, target.key, target.inFlight, line.length);
      this.#dropLine(target, line);
      rejectRequest(req, res, this.#full);
      return false;
    }
    const waiting: Waiting = { queue: this, req, res, target, timer: undefined, line, prev: line.tail, next: undefined };
    if (line.tail === undefined) line.head = waiting;
    else line.tail.next = waiting;
    line.tail = waiting;
    line.length++;
    this.#pending++;
    if (this.#options.queueTimeout > 0) waiting.timer = setTimeout(onQueueTimeout, clampDelay(this.#options.queueTimeout), waiting);
    (res as Holder)[kWaiting] = waiting;
    res.on('close', onWaitingClientClose);
    if (logProtect.enabled) logProtect('queued %s %s for %s (%d waiting)', req.method, req.url, target.key, line.length);
    return false;
  }

  /** A request on `target` ended: the head of its queue takes the free slot. */
  released(target: Target): void {
    const line = this.#lines.get(target);
    if (line === undefined) return;
    while (line.head !== undefined && target.inFlight < this.#options.maxConnections) {
      const waiting = line.head;
      this.#unlink(waiting);
      if (this.#owner.eligible(target)) this.#owner.dispatch(target, waiting.req, waiting.res);
      else this.#owner.proxy(waiting.req, waiting.res);
    }
    this.#dropLine(target, line);
  }

  /** Answers 503 to every waiting request (the balancer is closing). */
  close(): void {
    for (const line of this.#lines.values()) {
      while (line.head !== undefined) {
        const waiting = line.head;
        this.#unlink(waiting);
        rejectRequest(waiting.req, waiting.res, this.#full);
      }
    }
    this.#lines.clear();
  }

  /** @internal The request waited `queueTimeout` ms. */
  timedOut(waiting: Waiting): void {
    waiting.timer = undefined;
    this.#unlink(waiting);
    this.#dropLine(waiting.target, waiting.line);
    if (logProtect.enabled) logProtect('503 %s %s: waited %d ms for %s', waiting.req.method, waiting.req.url, this.#options.queueTimeout, waiting.target.key);
    rejectRequest(waiting.req, waiting.res, this.#full);
  }

  /** @internal The client hung up while its request waited. */
  left(waiting: Waiting): void {
    this.#unlink(waiting);
    this.#dropLine(waiting.target, waiting.line);
  }

  #newLine(target: Target): Line {
    const line: Line = { head: undefined, tail: undefined, length: 0 };
    this.#lines.set(target, line);
    return line;
  }

  #dropLine(target: Target, line: Line): void {
    if (line.length === 0 && this.#lines.get(target) === line) this.#lines.delete(target);
  }

  #unlink(waiting: Waiting): void {
    const line = waiting.line;
    if (waiting.prev === undefined) line.head = waiting.next;
    else waiting.prev.next = waiting.next;
    if (waiting.next === undefined) line.tail = waiting.prev;
    else waiting.next.prev = waiting.prev;
    waiting.prev = waiting.next = undefined;
    line.length--;
    this.#pending--;
    if (waiting.timer !== undefined) clearTimeout(waiting.timer);
    waiting.timer = undefined;
    const res = waiting.res as Holder;
    res[kWaiting] = undefined;
    res.off('close', onWaitingClientClose);
  }
}

function onQueueTimeout(waiting: Waiting): void {
  waiting.queue.timedOut(waiting);
}

function onWaitingClientClose(this: Holder): void {
  const waiting = this[kWaiting];
  if (waiting !== undefined) waiting.queue.left(waiting);
}
