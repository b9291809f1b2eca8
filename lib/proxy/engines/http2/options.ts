import { integer, LOAD_BALANCE_OPTIONS, milliseconds, nestedObject } from '../../../validate.js';

/** How the balancer keeps its HTTP/2 sessions to `h2c:`/`http2: true` targets (Envoy's `http2_protocol_options`). */
export interface Http2SessionOptions {
  /** Streams at most per session, whatever more the peer's SETTINGS_MAX_CONCURRENT_STREAMS allows (another session opens when one is full); default 100, as undici. */
  maxConcurrentStreams?: number;
  /** Milliseconds between PINGs on each open session (Envoy's `connection_keepalive.interval`); 0 for none; default 30000. */
  pingInterval?: number;
  /** Milliseconds a PING may go unanswered before its session is closed, failing its streams; default 20000 (gRPC's keepalive timeout). */
  pingTimeout?: number;
  /** Milliseconds a session without streams stays open (Envoy's `idle_timeout`); default 60000. */
  idleTimeout?: number;
}

export interface ResolvedHttp2Session {
  maxConcurrentStreams: number;
  pingInterval: number;
  pingTimeout: number;
  idleTimeout: number;
}

const KNOWN = ['maxConcurrentStreams', 'pingInterval', 'pingTimeout', 'idleTimeout'];

/** Validates `http2Session`; a TypeError names the bad option. */
export function resolveHttp2Session(input: unknown): ResolvedHttp2Session {
  const options = (nestedObject(input, 'http2Session', KNOWN) ?? {}) as Http2SessionOptions;
  const ms = (name: keyof Http2SessionOptions, fallback: number, positive = false): number =>
    milliseconds(LOAD_BALANCE_OPTIONS, `http2Session.${name}`, options[name] ?? fallback, { integer: true, positive });
  return {
    maxConcurrentStreams: integer(LOAD_BALANCE_OPTIONS, 'http2Session.maxConcurrentStreams', options.maxConcurrentStreams ?? 100, {
      min: 1,
      max: 2 ** 31 - 1,
      unit: 'streams',
    }),
    pingInterval: ms('pingInterval', 30_000),
    pingTimeout: ms('pingTimeout', 20_000, true),
    idleTimeout: ms('idleTimeout', 60_000, true),
  };
}
