import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Target } from '../../../target.js';

/**
 * What the HTTP/1.1 engine (the only module that talks to `http-proxy`) tells the balancer about
 * each exchange, in terms of Node's own types.
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
