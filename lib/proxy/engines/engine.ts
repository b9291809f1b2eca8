import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Target } from '../../target.js';

/**
 * What the balancer needs from an engine: send a request (or its retry) to a chosen target, open a
 * WebSocket tunnel, let go of upstream connections. An engine reports back through `EngineEvents`,
 * so the request path reads the same whichever engine serves a target.
 */
export interface Engine {
  /** Proxies one HTTP request to `target`; `body` replaces the request stream (a parsed body re-serialised). */
  web(target: Target, req: IncomingMessage, res: ServerResponse, body?: Readable): void;
  /** Sends a retry of `req` to `target`, replaying `body`. */
  retry(target: Target, req: IncomingMessage, res: ServerResponse, body: Readable): void;
  /** Opens a WebSocket tunnel to `target`. */
  ws(target: Target, req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes the upstream connections (sessions) the engine opened. */
  close(): void;
}

/**
 * How an engine reports an exchange, in terms of Node's HTTP/1 client types. An engine on another
 * protocol hands objects offering what `UpstreamEvents` and the exchange timers use of them (the
 * HTTP/2 engine's `UpstreamStream` and decorated response stream).
 */
export interface EngineEvents {
  /** The upstream request exists and has a socket (possibly still connecting). */
  request(proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void;
  /** The upstream response head arrived; headers may still be edited before they are relayed. */
  response(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void;
  /** An exchange with `target` failed (connect error, reset, timeout, client stream error). */
  error(err: Error, req: IncomingMessage, res: ServerResponse, target: Target | undefined): void;
  /** The upstream handshake request for a WebSocket tunnel exists. */
  upgradeRequest(proxyReq: ClientRequest, req: IncomingMessage, socket: Duplex): void;
  /** The WebSocket tunnel failed; the engine ends `socket` after this returns. */
  upgradeError(err: Error, req: IncomingMessage, socket: Duplex): void;
}
