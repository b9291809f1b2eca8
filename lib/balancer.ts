import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ClientIpResolver } from './client-ip.js';
import { ProxyEngine, type EngineEvents } from './engine.js';
import { respondError, statusForError, UpstreamTimeoutError } from './errors.js';
import { attach, Exchange, exchangeOf } from './exchange.js';
import { addForwardingHeaders } from './forwarded.js';
import { stripRequestHopByHop, stripResponseHopByHop, stripUpgradeHopByHop } from './hop-by-hop.js';
import { rewriteLocation } from './location.js';
import { logProxy, logStrategy } from './log.js';
import type { ResolvedOptions } from './options.js';
import { Pool } from './pool.js';
import type { Strategy } from './strategy.js';
import { roundRobin } from './strategies/round-robin.js';
import type { Target, TargetState } from './target.js';

/** One target's figures in `lb.stats()`. */
export interface TargetStats {
  url: string;
  weight: number;
  state: TargetState;
  /** Requests and WebSocket tunnels open now. */
  inFlight: number;
  /** Requests dispatched since the target joined. */
  total: number;
  /** Requests that failed upstream (connect error, reset, timeout). */
  errors: number;
  /** Moving average of time to response head, ms (0 before the first response). */
  latency: number;
}

/** What `lb.stats()` returns. */
export interface BalancerStats {
  strategy: string;
  /** Targets in the ready snapshot. */
  ready: number;
  /** Requests and tunnels open now, over all targets. */
  inFlight: number;
  /** Requests refused with 503 because no target was available. */
  unavailable: number;
  targets: TargetStats[];
}

const LOCATION_STATUSES = new Set([201, 301, 302, 303, 307, 308]);

/** The state behind one `loadBalance()` middleware: pool, strategy, engine and every exchange. */
export class Balancer implements EngineEvents {
  readonly pool: Pool;
  readonly strategy: Strategy;
  readonly #options: ResolvedOptions;
  readonly #engine: ProxyEngine;
  readonly #resolver: ClientIpResolver | undefined;
  readonly #tunnels = new Set<Duplex>();
  #inFlight = 0;
  #unavailable = 0;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.pool = new Pool(options.targets);
    this.strategy = options.strategy ?? roundRobin();
    this.#resolver = options.trustProxy === false ? undefined : new ClientIpResolver(options.trustProxy, options.trustedHeader);
    this.#engine = new ProxyEngine(options, this);
  }

  /** Proxies one HTTP request; the middleware entry point. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const target = this.#choose(req);
    if (target === undefined) {
      respondError(res, 503, this.#options.retryAfter);
      return;
    }
    stripRequestHopByHop(req.headers);
    this.#addForwarding(req);
    const exchange = this.#start(target, req, res);
    res.on('close', onClientClose);
    if (this.#options.timeout > 0) exchange.deadline = setTimeout(onDeadline, this.#options.timeout, exchange);
    this.#engine.web(target, req, res);
  }

  /** Tunnels one WebSocket upgrade; the `server.on('upgrade')` entry point. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignore);
    const target = this.#choose(req);
    if (target === undefined) {
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${this.#options.retryAfter}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    stripUpgradeHopByHop(req.headers);
    this.#addForwarding(req);
    this.#start(target, req, socket);
    this.#tunnels.add(socket);
    socket.on('close', onTunnelClose);
    this.#engine.ws(target, req, socket, head);
  }

  stats(): BalancerStats {
    const targets = this.pool.targets.map((t): TargetStats => ({
      url: t.key,
      weight: t.weight,
      state: t.state,
      inFlight: t.inFlight,
      total: t.total,
      errors: t.errors,
      latency: Math.round(t.latency * 100) / 100,
    }));
    return { strategy: this.strategy.name, ready: this.pool.ready.length, inFlight: this.#inFlight, unavailable: this.#unavailable, targets };
  }

  /** Refuses new requests, closes WebSocket tunnels, waits for in-flight requests, then closes upstream connections. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const socket of this.#tunnels) socket.destroy();
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    this.#engine.close();
  }

  /** Ends the bookkeeping of an exchange; called once per exchange by its last event. */
  finish(exchange: Exchange): void {
    if (exchange.ended) return;
    exchange.ended = true;
    if (exchange.deadline !== undefined) clearTimeout(exchange.deadline);
    if (exchange.client !== undefined) this.#tunnels.delete(exchange.client as Duplex);
    const target = exchange.target;
    target.inFlight--;
    this.#inFlight--;
    this.strategy.onEnd?.(target, exchange);
    this.pool.released(target);
    if (this.#inFlight === 0 && this.#idle !== undefined) this.#idle();
  }

  // Engine events. They run per request, so they are methods reading state off the exchange, not closures.

  readonly request = (proxyReq: ClientRequest, _req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined) return;
    exchange.proxyReq = proxyReq;
    if (exchange.ended || exchange.error !== undefined) {
      proxyReq.destroy();
      return;
    }
    this.#watchUpstream(proxyReq);
  };

  readonly response = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined) return;
    exchange.responded(proxyRes.statusCode ?? 0);
    attach(proxyRes, exchange);
    proxyRes.on('close', onUpstreamResponseClose);
    const headers = proxyRes.headers;
    stripResponseHopByHop(headers);
    // The client's own keep-alive choice, not the upstream's, governs the client connection.
    headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
    for (const name of this.#options.hideHeaders) delete headers[name];
    if (this.#options.rewriteLocation) this.#rewriteLocations(proxyRes, exchange.target, req);
  };

  readonly error = (err: Error, req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange !== undefined && !exchange.failed(err)) return;
    // A client that hung up is not the upstream's fault.
    if (exchange !== undefined && !req.socket.destroyed) exchange.target.errors++;
    const status = statusForError(err);
    if (logProxy.enabled) logProxy('%d for %s %s via %s: %s', status, req.method, req.url, exchange?.target.key, err.message);
    respondError(res, status);
  };

  readonly upgradeRequest = (proxyReq: ClientRequest, _req: IncomingMessage, socket: Duplex): void => {
    const exchange = exchangeOf(socket);
    if (exchange === undefined) return;
    exchange.proxyReq = proxyReq;
    attach(proxyReq, exchange);
    this.#watchUpstream(proxyReq);
    proxyReq.once('upgrade', onTunnelOpen);
    proxyReq.once('response', onTunnelRefused);
  };

  readonly upgradeError = (err: Error, req: IncomingMessage, socket: Duplex): void => {
    const exchange = exchangeOf(socket);
    if (exchange === undefined || !exchange.failed(err)) return;
    exchange.target.errors++;
    const status = statusForError(err);
    if (logProxy.enabled) logProxy('%d for upgrade %s via %s: %s', status, req.url, exchange.target.key, err.message);
    // Before the 101 the client still speaks HTTP and deserves a status line; after it, only a cut.
    if (exchange.status === 0 && socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${status === 504 ? 'Gateway Timeout' : 'Bad Gateway'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    }
  };

  #watchUpstream(proxyReq: ClientRequest): void {
    const timeout = this.#options.proxyTimeout;
    if (timeout === 0) return;
    proxyReq.setTimeout(timeout, onUpstreamIdle);
    // ClientRequest only arms its timer once connected; a blackholed upstream must time out too.
    const socket = proxyReq.socket as Socket | null;
    if (socket?.connecting) socket.setTimeout(timeout);
  }

  #choose(req: IncomingMessage): Target | undefined {
    if (this.#closed) return this.#refuse('balancer closed');
    if (!toOriginForm(req)) return this.#refuse('unusable request target');
    const ready = this.pool.ready;
    if (ready.length === 0) return this.#refuse('no target ready');
    this.#resolver?.resolve(req);
    const target = this.strategy.pick(ready, req);
    if (target === undefined) return this.#refuse(`${this.strategy.name} picked none`);
    return target;
  }

  #refuse(why: string): undefined {
    this.#unavailable++;
    if (logStrategy.enabled) logStrategy('503: %s', why);
    return undefined;
  }

  #addForwarding(req: IncomingMessage): void {
    addForwardingHeaders(req, this.#options, this.#resolver?.trusts(req) ?? false);
  }

  #start(target: Target, req: IncomingMessage, client: ServerResponse | Duplex): Exchange {
    const exchange = new Exchange(this, target, req, client);
    attach(client, exchange);
    target.inFlight++;
    target.total++;
    this.#inFlight++;
    this.strategy.onStart?.(target, req);
    if (logProxy.enabled) logProxy('%s %s -> %s', req.method, req.url, target.key);
    return exchange;
  }

  #rewriteLocations(proxyRes: IncomingMessage, target: Target, req: IncomingMessage): void {
    const headers = proxyRes.headers;
    const forwarded = this.#options.xForwarded;
    if (headers.location !== undefined && LOCATION_STATUSES.has(proxyRes.statusCode ?? 0)) {
      headers.location = rewriteLocation(headers.location, target, req, forwarded);
    }
    const contentLocation = headers['content-location'];
    if (typeof contentLocation === 'string') headers['content-location'] = rewriteLocation(contentLocation, target, req, forwarded);
  }
}

function ignore(): void {}

function onUpstreamIdle(this: ClientRequest): void {
  this.destroy(new UpstreamTimeoutError('upstream idle timeout'));
}

function onDeadline(exchange: Exchange): void {
  exchange.deadline = undefined;
  const err = new UpstreamTimeoutError('upstream response deadline');
  if (exchange.proxyReq !== undefined) {
    exchange.proxyReq.destroy(err);
    return;
  }
  // Still waiting for a socket: answer now; the engine's request, when it comes, is dropped.
  if (exchange.failed(err)) {
    exchange.target.errors++;
    respondError(exchange.client as ServerResponse, 504);
  }
}

function onClientClose(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  // The client left before the response was complete: stop the upstream work too.
  if (!this.writableFinished) exchange.proxyReq?.destroy();
  exchange.owner.finish(exchange);
}

function onUpstreamResponseClose(this: IncomingMessage): void {
  // An upstream body cut short must not reach the client as a complete response.
  if (!this.complete) exchangeOf(this)?.client.destroy();
}

function onTunnelOpen(this: ClientRequest, _proxyRes: IncomingMessage, proxySocket: Socket): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  exchange.responded(101);
  exchange.tunnel = proxySocket;
  // The tunnel lives as long as its peers want; the connect/handshake timeout no longer applies.
  proxySocket.setTimeout(0);
  attach(proxySocket, exchange);
  proxySocket.on('close', onTunnelUpstreamClose);
}

function onTunnelRefused(this: ClientRequest, proxyRes: IncomingMessage): void {
  exchangeOf(this)?.responded(proxyRes.statusCode ?? 0);
}

function onTunnelUpstreamClose(this: Socket): void {
  // Let what the upstream sent last reach the client, then close.
  (exchangeOf(this)?.client as Socket | undefined)?.destroySoon();
}

function onTunnelClose(this: Duplex): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  if (exchange.tunnel !== undefined) exchange.tunnel.destroy();
  else exchange.proxyReq?.destroy();
  exchange.owner.finish(exchange);
}

/** Reduces an absolute-form request target to origin-form so it can never pick another host. */
function toOriginForm(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  if (url.charCodeAt(0) === 0x2f /* / */) return true;
  try {
    const parsed = new URL(url);
    req.url = parsed.pathname + parsed.search;
    return true;
  } catch {
    return false;
  }
}
