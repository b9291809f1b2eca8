import type { IncomingMessage } from 'node:http';
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { fail, integer, knownKeys, LOAD_BALANCE_OPTIONS, milliseconds } from '../validate.js';
import { logProtect } from './log.js';

/** When an HTTP/2 connection is closed for resetting its streams early (HTTP/2 Rapid Reset, CVE-2023-44487); Envoy's `overload.premature_reset_*`. */
export interface PrematureResetOptions {
  /** Streams a connection may close before the share of premature resets is judged, count; default 500 (Envoy's `premature_reset_total_stream_count`). More than half of this many premature resets close it sooner. */
  totalStreams?: number;
  /** A stream the client resets within this many milliseconds of its arrival, before any response head, is premature; default 1000 (Envoy's `premature_reset_min_stream_lifetime_seconds`, 1). */
  minStreamLifetime?: number;
}

/** Resolved {@link PrematureResetOptions}. */
export interface ResolvedPrematureResets {
  totalStreams: number;
  minStreamLifetime: number;
}

const DEFAULTS: ResolvedPrematureResets = { totalStreams: 500, minStreamLifetime: 1000 };

/** Checks `options.prematureResets` (an object, or `false` for off) and fills defaults. */
export function resolvePrematureResets(value: unknown): ResolvedPrematureResets | undefined {
  if (value === false) return undefined;
  if (value === undefined) return DEFAULTS;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('prematureResets', 'an object { totalStreams?, minStreamLifetime? } or false', value);
  const options = value as Record<string, unknown>;
  knownKeys(options, 'prematureResets', ['totalStreams', 'minStreamLifetime']);
  return {
    totalStreams:
      options.totalStreams === undefined
        ? DEFAULTS.totalStreams
        : integer(LOAD_BALANCE_OPTIONS, 'prematureResets.totalStreams', options.totalStreams, { min: 1, unit: 'streams' }),
    minStreamLifetime:
      options.minStreamLifetime === undefined
        ? DEFAULTS.minStreamLifetime
        : milliseconds(LOAD_BALANCE_OPTIONS, 'prematureResets.minStreamLifetime', options.minStreamLifetime),
  };
}

const kAccount = Symbol('proxy-balancer.prematureResets');
const kArrived = Symbol('proxy-balancer.arrived');

interface SessionAccount {
  guard: PrematureResets;
  /** A closed stream no longer names its session. */
  session: Http2Session;
  /** Streams closed so far. */
  streams: number;
  /** Of those, the ones reset early. */
  premature: number;
}

type AccountedSession = Http2Session & { [kAccount]?: SessionAccount };
type AccountedStream = ServerHttp2Stream & { [kAccount]?: SessionAccount; [kArrived]?: number };

/**
 * Counts, per HTTP/2 session, the streams closed and those the client reset before a response
 * head within `minStreamLifetime`; closes the session (GOAWAY ENHANCE_YOUR_CALM, then the socket)
 * once more than half of at least `totalStreams` were premature, or sooner when more than half of
 * `totalStreams` already were, as Envoy does. A reset stream costs the balancer no upstream
 * request, but the client could keep a core busy with them for ever. The account is made at a
 * session's first request, so sessions and requests over HTTP/1.1 carry nothing.
 */
export class PrematureResets {
  readonly totalStreams: number;
  readonly minStreamLifetime: number;
  /** Sessions closed for premature resets. */
  sessionsClosed = 0;

  constructor(options: ResolvedPrematureResets) {
    this.totalStreams = options.totalStreams;
    this.minStreamLifetime = options.minStreamLifetime;
  }

  /** Accounts for the stream of an HTTP/2 request (compat API) when it closes. */
  watch(req: IncomingMessage): void {
    const stream = (req as IncomingMessage & { stream?: AccountedStream }).stream;
    const session = stream?.session as AccountedSession | undefined;
    if (stream === undefined || session === undefined || stream[kAccount] !== undefined) return;
    let account = session[kAccount];
    if (account === undefined) account = session[kAccount] = { guard: this, session, streams: 0, premature: 0 };
    stream[kAccount] = account;
    stream[kArrived] = performance.now();
    stream.on('close', onStreamClose);
  }

  /** @internal */
  judge(account: SessionAccount): void {
    const { session, streams, premature } = account;
    if (premature * 2 <= Math.max(streams, this.totalStreams)) return;
    this.sessionsClosed++;
    if (logProtect.enabled) {
      logProtect('closing HTTP/2 session from %s: %d of %d streams reset prematurely', session.socket?.remoteAddress, premature, streams);
    }
    // The error makes Node send GOAWAY with the code (without one it sends NO_ERROR); the server
    // reports it as 'sessionError', which needs no listener.
    session.destroy(new Error('HTTP/2 session closed: too many premature stream resets'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

function onStreamClose(this: AccountedStream): void {
  const account = this[kAccount]!;
  const session = account.session;
  // Streams closed by the session going away say nothing about the client.
  if (session.destroyed || session.closed) return;
  account.streams++;
  if (this.rstCode !== constants.NGHTTP2_NO_ERROR && !this.headersSent && performance.now() - this[kArrived]! <= account.guard.minStreamLifetime) {
    account.premature++;
    account.guard.judge(account);
  }
}
