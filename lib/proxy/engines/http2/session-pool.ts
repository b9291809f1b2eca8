import type { SecureClientSessionOptions } from 'node:http2';
import type { ResolvedHttp2Session } from './options.js';
import { type SessionOwner, UpstreamSession } from './session.js';

/** A request waiting for a session with room for its stream. */
export interface SessionWaiter {
  /** A session has room: open the stream on it now (synchronously). */
  sessionReady(session: UpstreamSession): void;
  /** No session could be had (its connect failed, the pool closed). */
  sessionFailed(err: Error): void;
}

/**
 * The HTTP/2 sessions to one target. A stream goes out on the first session with room under the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS (capped); when every session is full another one opens, one
 * handshake at a time, and requests wait for it in order. A session that received GOAWAY drains:
 * it is out of the list, and closes once its streams are done.
 */
export class SessionPool implements SessionOwner {
  readonly #authority: string;
  readonly #options: SecureClientSessionOptions;
  readonly #limits: ResolvedHttp2Session;
  /** Sessions that take new streams (connecting ones included). */
  readonly #sessions: UpstreamSession[] = [];
  #connecting: UpstreamSession | undefined = undefined;
  #waiting: SessionWaiter[] = [];
  #closed = false;

  /** Told when the pool holds no session and no waiter: the engine forgets it (a target removed from the balancer leaves nothing behind). */
  readonly #onEmpty: () => void;

  constructor(authority: string, options: SecureClientSessionOptions, limits: ResolvedHttp2Session, onEmpty: () => void) {
    this.#authority = authority;
    this.#options = options;
    this.#limits = limits;
    this.#onEmpty = onEmpty;
  }

  /** Sessions open or opening, draining ones included until they close (for stats and tests). */
  readonly all = new Set<UpstreamSession>();

  /** Hands `waiter` a session now if one has room, else queues it (opening a session if none is on its way). */
  acquire(waiter: SessionWaiter): void {
    if (this.#closed) {
      waiter.sessionFailed(new Error('balancer closed'));
      return;
    }
    const sessions = this.#sessions;
    for (let i = 0; i < sessions.length; i++) {
      const session = sessions[i]!;
      if (session.hasRoom) {
        waiter.sessionReady(session);
        return;
      }
    }
    this.#waiting.push(waiter);
    if (this.#connecting === undefined) this.#open();
  }

  /** Forgets a waiter that gave up (timeout, client gone). */
  cancel(waiter: SessionWaiter): void {
    const at = this.#waiting.indexOf(waiter);
    if (at !== -1) this.#waiting.splice(at, 1);
  }

  hasRoom(session: UpstreamSession): void {
    if (session === this.#connecting) this.#connecting = undefined;
    const waiting = this.#waiting;
    while (waiting.length > 0 && session.hasRoom) waiting.shift()!.sessionReady(session);
    // More requests than this session's streams: the next session opens now.
    if (waiting.length > 0 && this.#connecting === undefined && !this.#closed) this.#open();
  }

  retired(session: UpstreamSession, err: Error | undefined): void {
    const at = this.#sessions.indexOf(session);
    if (at !== -1) this.#sessions.splice(at, 1);
    if (session !== this.#connecting) return;
    this.#connecting = undefined;
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    if (err !== undefined || this.#closed) {
      // The connect failed: every request waiting for it fails the way it did.
      this.#waiting = [];
      for (const waiter of waiting) waiter.sessionFailed(err ?? new Error('balancer closed'));
    } else {
      this.#open();
    }
  }

  /** Closes every session now (streams still open on them fail) and fails the requests waiting. */
  close(): void {
    this.#closed = true;
    for (const session of [...this.all]) session.destroy();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const waiter of waiting) waiter.sessionFailed(new Error('balancer closed'));
  }

  #open(): void {
    const session = new UpstreamSession(this.#authority, this.#options, this.#limits, this);
    this.#connecting = session;
    this.#sessions.push(session);
    this.all.add(session);
    session.h2.once('close', () => {
      this.all.delete(session);
      if (this.all.size === 0 && this.#waiting.length === 0) this.#onEmpty();
    });
  }
}
