import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Duplex, Readable } from 'node:stream';
import { logProxy } from '../../../observe/log.js';
import type { Target } from '../../../target.js';
import { http2HasBody, isHttp2 } from '../../http2.js';
import { refuseHandshake } from '../../tunnel.js';
import { UpstreamTimeoutError } from '../../errors.js';
import { clampDelay } from '../../../timer.js';
import type { Engine, EngineEvents } from '../engine.js';
import { connectAuthority, connectOptions } from './connect.js';
import type { ResolvedHttp2Session } from './options.js';
import { upstreamHeaders } from './request-headers.js';
import { SessionPool } from './session-pool.js';
import { type StreamHost, UpstreamStream } from './upstream-stream.js';

export interface Http2EngineOptions {
  /** TLS and connection options (`ca`, `rejectUnauthorized`, `servername`, `lookup`...), as for the HTTP/1.1 engine's agents. */
  agentOptions: https.AgentOptions;
  /** Send the target's host as `:authority` instead of the client's `Host`. */
  changeOrigin: boolean;
  http2Session: ResolvedHttp2Session;
  /** Milliseconds a stream may stay silent (waiting for its session included); 0 for no limit. */
  proxyTimeout: number;
}

/**
 * The HTTP/2 engine (`node:http2`): each request, from an HTTP/1.1 or an HTTP/2 client, goes out as
 * a stream on a session from the target's pool (`SessionPool`), and is reported through the same
 * `EngineEvents` as the HTTP/1.1 engine's, so retries, timeouts, health and metrics work alike.
 */
export class Http2Engine implements Engine, StreamHost {
  readonly events: EngineEvents;
  readonly #options: Http2EngineOptions;
  readonly #pools = new Map<Target, SessionPool>();

  constructor(options: Http2EngineOptions, events: EngineEvents) {
    this.#options = options;
    this.events = events;
  }

  web(target: Target, req: IncomingMessage, res: ServerResponse, body?: Readable): void {
    const headers = upstreamHeaders(target, req, this.#options.changeOrigin);
    const source = body ?? (hasBody(req) ? req : undefined);
    this.#send(new UpstreamStream(this, this.#poolFor(target), target, req, res, headers, source));
  }

  retry(target: Target, req: IncomingMessage, res: ServerResponse, body: Readable): void {
    const headers = upstreamHeaders(target, req, this.#options.changeOrigin);
    this.#send(new UpstreamStream(this, this.#poolFor(target), target, req, res, headers, hasBody(req) ? body : undefined));
  }

  #send(upstream: UpstreamStream): void {
    const timeout = clampDelay(this.#options.proxyTimeout);
    if (timeout > 0) upstream.setTimeout(timeout, onUpstreamIdle);
    upstream.send();
  }

  /**
   * WebSockets to an HTTP/2 target would need RFC 8441's extended CONNECT on the upstream session;
   * not done: the handshake is refused with 502, which says the gateway cannot reach it that way.
   */
  ws(target: Target, req: IncomingMessage, socket: Duplex, _head: Buffer): void {
    if (logProxy.enabled) logProxy('502 for upgrade %s: %s speaks HTTP/2, WebSockets need an HTTP/1.1 target', req.url, target.key);
    refuseHandshake(socket, 502);
  }

  close(): void {
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }

  /** The target's session pool (for stats and tests): undefined before its first request. */
  sessionsOf(target: Target): SessionPool | undefined {
    return this.#pools.get(target);
  }

  #poolFor(target: Target): SessionPool {
    let pool = this.#pools.get(target);
    if (pool === undefined) {
      pool = new SessionPool(connectAuthority(target), connectOptions(target, this.#options.agentOptions), this.#options.http2Session, () =>
        this.#pools.delete(target),
      );
      this.#pools.set(target, pool);
    }
    return pool;
  }
}

/** Whether the request carries a body to send: without one the HEADERS frame ends the stream. */
function hasBody(req: IncomingMessage): boolean {
  if (isHttp2(req)) return http2HasBody(req);
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function onUpstreamIdle(this: UpstreamStream): void {
  this.destroy(new UpstreamTimeoutError('upstream idle timeout'));
}
