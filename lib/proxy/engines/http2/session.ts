import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders, type SecureClientSessionOptions, type Settings } from 'node:http2';
import { logProxy } from '../../../observe/log.js';
import { markUnprocessed } from '../../errors.js';
import type { ResolvedHttp2Session } from './options.js';

/** What a session tells the pool it belongs to. */
export interface SessionOwner {
  /** The session finished its handshake, or has room for a stream again. */
  hasRoom(session: UpstreamSession): void;
  /** The session takes no new streams (GOAWAY, closed, failed); `err` when it never connected. */
  retired(session: UpstreamSession, err: Error | undefined): void;
}

/** Stream ids run to 2^31-1: above every id until a GOAWAY says which was the last one processed. */
const NO_GOAWAY = 2 ** 31;

/**
 * One HTTP/2 session to a target, with the bookkeeping the pool needs: its streams against the
 * peer's SETTINGS_MAX_CONCURRENT_STREAMS (capped), GOAWAY drain, PING keep-alive and idle close.
 * The session has its listeners for its whole life, so nothing it meets can crash the process.
 */
export class UpstreamSession {
  readonly h2: ClientHttp2Session;
  readonly #owner: SessionOwner;
  readonly #limits: ResolvedHttp2Session;
  /** Streams open on the session now. */
  active = 0;
  /** How many may be open at once: the peer's setting, capped by `maxConcurrentStreams`. */
  maxStreams: number;
  /** The peer's first SETTINGS arrived: only then is its stream limit known. */
  ready = false;
  /** Takes no new streams (GOAWAY received, closing, failed). */
  retired = false;
  /** Streams above this id were not processed by the peer (the last-stream-id of its GOAWAY). */
  lastProcessed = NO_GOAWAY;
  #idle: NodeJS.Timeout | undefined = undefined;
  #ping: NodeJS.Timeout | undefined = undefined;

  constructor(authority: string, options: SecureClientSessionOptions, limits: ResolvedHttp2Session, owner: SessionOwner) {
    this.#owner = owner;
    this.#limits = limits;
    this.maxStreams = limits.maxConcurrentStreams;
    this.h2 = http2.connect(authority, options);
    sessions.set(this.h2, this);
    this.h2.on('error', onSessionError);
    this.h2.on('remoteSettings', onRemoteSettings);
    this.h2.on('goaway', onGoaway);
    this.h2.on('close', onSessionClose);
    this.h2.on('frameError', ignore);
    if (authority.startsWith('https:')) this.h2.once('connect', onSecureConnect);
  }

  /** Whether a new stream may go out on it now. */
  get hasRoom(): boolean {
    return this.ready && !this.retired && this.active < this.maxStreams;
  }

  /** Opens a stream; the caller listens for its events. Throws when Node refuses (a session closing meanwhile). */
  request(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    const stream = this.h2.request(headers, { endStream });
    if (this.active++ === 0) this.h2.ref();
    if (this.#idle !== undefined) {
      clearTimeout(this.#idle);
      this.#idle = undefined;
    }
    return stream;
  }

  /** One of its streams closed. */
  streamClosed(): void {
    this.active--;
    if (this.retired) {
      if (this.active === 0) this.h2.close();
      return;
    }
    if (this.active === 0) this.#idleNow();
    this.#owner.hasRoom(this);
  }

  // An idle session, like an agent's free socket, does not keep the process alive.
  #idleNow(): void {
    this.#idle = setTimeout(closeIdle, this.#limits.idleTimeout, this);
    this.#idle.unref();
    this.h2.unref();
  }

  /** Closes the session now, failing whatever streams it still carries. */
  destroy(): void {
    this.#retire(undefined);
    this.h2.destroy();
  }

  /** Closes the session once idle: a GOAWAY first, so the peer knows no stream comes. */
  closeIdle(): void {
    if (this.active !== 0) return;
    this.#retire(undefined);
    this.h2.close();
  }

  #retire(err: Error | undefined): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    if (this.#ping !== undefined) clearInterval(this.#ping);
    this.#idle = this.#ping = undefined;
    if (this.retired) return;
    this.retired = true;
    this.#owner.retired(this, err);
  }

  /** The peer's SETTINGS: its first makes the session ready; any later one may change its stream limit. */
  heardSettings(settings: Settings): void {
    const peer = settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
    this.maxStreams = Math.max(1, Math.min(peer, this.#limits.maxConcurrentStreams));
    if (this.retired) return;
    if (!this.ready) {
      this.ready = true;
      if (this.#limits.pingInterval > 0) {
        this.#ping = setInterval(sendPing, this.#limits.pingInterval, this);
        this.#ping.unref();
      }
      this.#idleNow();
    }
    this.#owner.hasRoom(this);
  }

  /** A GOAWAY: no new stream goes out on the session; those open finish, then it closes. */
  heardGoaway(code: number, lastStreamId: number): void {
    this.lastProcessed = lastStreamId;
    if (logProxy.enabled) logProxy('GOAWAY (code %d, last stream %d): draining %d streams', code, lastStreamId, this.active);
    this.#retire(undefined);
    if (this.active === 0) this.h2.close();
  }

  /** The session closed; `err` is what closed it, if anything did. */
  heardClose(err: Error | undefined): void {
    // Failed before its handshake: the requests waiting for it were not processed anywhere.
    this.#retire(err !== undefined && !this.ready ? markUnprocessed(err) : undefined);
  }

  /** Sends a keep-alive PING; a peer that does not answer within `pingTimeout` loses the session. */
  ping(): void {
    if (this.h2.destroyed || this.h2.connecting) return;
    const timer = setTimeout(pingUnanswered, this.#limits.pingTimeout, this);
    timer.unref();
    try {
      this.h2.ping((err) => {
        clearTimeout(timer);
        if (err !== null) pingUnanswered(this);
      });
    } catch {
      // Too many PINGs unanswered already: the timer closes the session.
    }
  }
}

// Session listeners are shared functions finding their UpstreamSession here: no closure per session.
const sessions = new WeakMap<ClientHttp2Session, UpstreamSession>();
// The error that closed a session, for its 'close' (which carries none).
const failures = new WeakMap<ClientHttp2Session, Error>();

function onSessionError(this: ClientHttp2Session, err: Error): void {
  failures.set(this, err);
  if (logProxy.enabled) logProxy('HTTP/2 session error: %s', err.message);
}

function onRemoteSettings(this: ClientHttp2Session, settings: Settings): void {
  sessions.get(this)?.heardSettings(settings);
}

function onGoaway(this: ClientHttp2Session, code: number, lastStreamId: number): void {
  sessions.get(this)?.heardGoaway(code, lastStreamId);
}

function onSessionClose(this: ClientHttp2Session): void {
  sessions.get(this)?.heardClose(failures.get(this) ?? new Error('HTTP/2 session closed before its handshake'));
}

// A TLS peer that did not agree on h2 (no ALPN at all) is not an HTTP/2 server.
function onSecureConnect(this: ClientHttp2Session): void {
  if (this.alpnProtocol === 'h2') return;
  const err = Object.assign(new Error(`TLS peer did not negotiate HTTP/2 (ALPN ${JSON.stringify(this.alpnProtocol ?? null)})`), { code: 'ERR_HTTP2_ALPN' });
  this.destroy(err);
}

function closeIdle(session: UpstreamSession): void {
  session.closeIdle();
}

function sendPing(session: UpstreamSession): void {
  session.ping();
}

function pingUnanswered(session: UpstreamSession): void {
  if (session.h2.destroyed) return;
  if (logProxy.enabled) logProxy('PING unanswered: closing the session');
  session.h2.destroy(Object.assign(new Error('HTTP/2 PING unanswered'), { code: 'ERR_HTTP2_PING_TIMEOUT' }));
}

function ignore(): void {}
