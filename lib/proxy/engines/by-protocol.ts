import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import type { Target } from '../../target.js';
import type { Engine } from './engine.js';

/**
 * The balancer's engine: each target's requests go to the engine of its protocol (`target.http2`,
 * fixed when the target is declared), a field read per request. The HTTP/2 engine is created on
 * the first request to an HTTP/2 target, so a balancer without one has none.
 */
export class EngineByProtocol implements Engine {
  readonly #http1: Engine;
  readonly #createHttp2: () => Engine;
  #http2: Engine | undefined = undefined;

  constructor(http1: Engine, createHttp2: () => Engine) {
    this.#http1 = http1;
    this.#createHttp2 = createHttp2;
  }

  web(target: Target, req: IncomingMessage, res: ServerResponse, body?: Readable): void {
    (target.http2 ? this.http2 : this.#http1).web(target, req, res, body);
  }

  retry(target: Target, req: IncomingMessage, res: ServerResponse, body: Readable): void {
    (target.http2 ? this.http2 : this.#http1).retry(target, req, res, body);
  }

  ws(target: Target, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    (target.http2 ? this.http2 : this.#http1).ws(target, req, socket, head);
  }

  close(): void {
    this.#http1.close();
    this.#http2?.close();
  }

  /** The HTTP/2 engine, created on first use. */
  get http2(): Engine {
    this.#http2 ??= this.#createHttp2();
    return this.#http2;
  }
}
