import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isDetached, type ResponseCache } from './cache/response-cache.js';
import { ResponseEvents } from './observe/access-log.js';
import { endSpan, Tracing } from './observe/tracing.js';
import { ClientIpResolver } from './proxy/client-ip.js';
import { ProxyEngine, type EngineEvents } from './proxy/engine.js';
import { respondError, statusForError, UpstreamTimeoutError } from './proxy/errors.js';
import type { BalancerEvents } from './observe/events.js';
import { attach, Exchange, exchangeOf } from './proxy/exchange.js';
import { addForwardingHeaders } from './proxy/forwarded.js';
import { HealthSupervisor } from './health/supervisor.js';
import { stripRequestHopByHop, stripResponseHopByHop, stripUpgradeHopByHop } from './proxy/hop-by-hop.js';
import { runHook } from './proxy/hooks.js';
import { rewriteLocation } from './proxy/location.js';
import { logProxy, logStrategy } from './observe/log.js';
import { toOriginForm } from './proxy/origin-form.js';
import type { Admission } from './protect/admission.js';
import type { CircuitBreaker } from './protect/circuit-breaker.js';
import type { ConnectionQueue } from './protect/connection-queue.js';
import { refusedFraming, refusedUpgradeFraming, refuseUnforwardable } from './protect/framing.js';
import { createGuards } from './protect/guards.js';
import { countBody } from './protect/request-limits.js';
import { watchPipelined } from './protect/pipelining.js';
import { watchTunnelIdle } from './protect/tunnel-idle.js';
import type { ResolvedOptions } from './options.js';
import type { ExchangeObserver } from './observe/recorder.js';
import { Pool } from './pool.js';
import { parsedBody } from './proxy/parsed-body.js';
import { bodyStream, emptyBody, RequestBody, RetryBudget, type RetryPolicy } from './proxy/retry.js';
import type { BalancerStats, TargetStats } from './observe/stats.js';
import type { Strategy } from './strategies/strategy.js';
import { roundRobin } from './strategies/round-robin.js';
import type { Target } from './target.js';
import { refuseHandshake, watchClientSocket, watchHandshake } from './proxy/tunnel.js';

const LOCATION_STATUSES = new Set([201, 301, 302, 303, 307, 308]);

/** The state behind one `loadBalance()` middleware: pool, strategy, health, engine and every exchange. */
export class Balancer extends EventEmitter<BalancerEvents> implements EngineEvents {
  readonly pool: Pool;
  readonly strategy: Strategy;
  readonly #options: ResolvedOptions;
  readonly #engine: ProxyEngine;
  readonly #health: HealthSupervisor;
  readonly #resolver: ClientIpResolver | undefined;
  readonly #retry: RetryPolicy | undefined;
  readonly #budget: RetryBudget | undefined;
  readonly #tunnels = new Set<Duplex>();
  readonly #cache: ResponseCache | undefined;
  readonly #admission: Admission | undefined;
  readonly #queue: ConnectionQueue | undefined;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #responses: ResponseEvents;
  readonly #tracing: Tracing | undefined;
  #inFlight = 0;
  #unavailable = 0;
  #retries = 0;
  #closed = false;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  /** Hears every ended exchange (`lb.metrics()` sets it). */
  observer: ExchangeObserver | undefined = undefined;

  constructor(options: ResolvedOptions) {
    super();
    this.#options = options;
    this.pool = new Pool(options.targets, options.panicThreshold);
    this.strategy = options.strategy ?? roundRobin();
    this.#resolver = options.trustProxy === false ? undefined : new ClientIpResolver(options.trustProxy, options.trustedHeader);
    this.#retry = options.retry;
    this.#budget = options.retry && new RetryBudget(options.retry.budgetPercent, options.retry.minRetries);
    this.#health = new HealthSupervisor(this.pool, options, this.notify);
    this.#engine = new ProxyEngine(options, this);
    this.#cache = options.cache?.cache;
    this.#tracing = options.tracing ? new Tracing() : undefined;
    this.#responses = new ResponseEvents(this.#resolver, (info, req, res) => this.notify('response', info, req, res));
    const guards = createGuards(options.protection, options.retryAfter, this.#resolver, {
      forward: (req, res) => this.#forward(req, res),
      forwardUpgrade: (req, socket, head) => this.#tunnel(req, socket, head),
      proxy: (req, res) => this.#proxy(req, res),
      dispatch: (target, req, res) => this.#dispatch(target, req, res),
      eligible: (target) => this.pool.ready.includes(target),
    });
    this.#admission = guards.admission;
    this.#queue = guards.queue;
    this.#breaker = guards.breaker;
  }

  /**
   * Emits an event. Listeners run inside request and health handling, so one that throws is
   * reported as a process warning instead of taking the process down.
   */
  readonly notify = <E extends keyof BalancerEvents>(event: E, ...args: BalancerEvents[E]): void => {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      process.emitWarning(`a '${event}' listener threw: ${(err as Error)?.stack ?? String(err)}`, 'ProxyBalancerWarning');
    }
  };

  /** The middleware entry point: framing and admission checks, then the response cache if any, then the proxy. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.listenerCount('response') > 0 && !isDetached(req)) this.#responses.watch(req, res);
    if (refusedFraming(req, res)) return;
    if (!toOriginForm(req)) {
      // `OPTIONS *` and other targets that are neither a path nor a URL name nothing to proxy.
      respondError(res, 400);
      return;
    }
    if (res.socket === null) watchPipelined(req, res);
    if (this.#admission === undefined) this.#forward(req, res);
    else this.#admission.admit(req, res);
  }

  /** A request past admission: through the response cache when there is one, else straight to the proxy. */
  #forward(req: IncomingMessage, res: ServerResponse): void {
    if (this.#cache === undefined) this.#proxy(req, res);
    else this.#cache.handle(req, res, this.#proxyHandler, this.#proxyHandler);
  }

  readonly #proxyHandler = (req: IncomingMessage, res: ServerResponse): void => this.#proxy(req, res);

  /** Proxies one HTTP request to a target. */
  #proxy(req: IncomingMessage, res: ServerResponse): void {
    // A client that left while an async step ran (a cache lookup in Redis) already had its 'close':
    // an exchange started now would never end.
    if (res.destroyed) return;
    const target = this.#breaker?.admits(this.#inFlight) === false ? this.#refuse('circuit breaker: maxRequests in flight') : this.#choose(req);
    if (target === undefined) {
      respondError(res, 503, this.#options.retryAfter);
      return;
    }
    if (this.#queue === undefined || this.#queue.admit(target, req, res)) this.#dispatch(target, req, res);
  }

  /** Sends a request to `target` (whose connection slot, when capped, is free). */
  #dispatch(target: Target, req: IncomingMessage, res: ServerResponse): void {
    stripRequestHopByHop(req.headers);
    this.#addForwarding(req);
    const exchange = this.#start(target, req, res);
    this.#tracing?.start(exchange);
    res.on('close', onClientClose);
    if (this.#options.timeout > 0) exchange.deadline = setTimeout(onDeadline, this.#options.timeout, exchange);
    const parsed = parsedBody(req);
    if (parsed !== undefined) {
      req.headers['content-length'] = String(parsed.length);
      delete req.headers['transfer-encoding'];
    }
    if (this.#retry !== undefined) {
      this.#budget!.request();
      exchange.body = parsed === undefined ? RequestBody.record(req, this.#retry.maxBodyBytes) : RequestBody.of(parsed);
    }
    const maxBodySize = this.#options.protection.maxBodySize;
    if (maxBodySize > 0) countBody(req, res, maxBodySize);
    try {
      this.#engine.web(target, req, res, parsed === undefined ? undefined : (exchange.body?.replay() ?? bodyStream(parsed)));
    } catch (err) {
      refuseUnforwardable(req, res, err);
    }
  }

  /** Tunnels one WebSocket upgrade; the `server.on('upgrade')` entry point. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignore);
    if (refusedUpgradeFraming(req, socket)) return;
    if (!toOriginForm(req)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    if (this.#admission === undefined) this.#tunnel(req, socket, head);
    else this.#admission.admitUpgrade(req, socket, head);
  }

  /** Tunnels an admitted WebSocket upgrade. Tunnels do not queue: a target at `maxConnections` refuses them. */
  #tunnel(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = this.#breaker?.admits(this.#inFlight) === false ? this.#refuse('circuit breaker: maxRequests in flight') : this.#choose(req);
    if (target === undefined || this.#queue?.hasRoom(target) === false) {
      refuseHandshake(socket, 503, this.#options.retryAfter);
      return;
    }
    stripUpgradeHopByHop(req.headers);
    this.#addForwarding(req);
    this.#start(target, req, socket);
    this.#tunnels.add(socket);
    watchClientSocket(socket);
    try {
      this.#engine.ws(target, req, socket, head);
    } catch (err) {
      refuseUnforwardable(req, socket, err);
    }
    // After the engine, which clears the client socket's timeout.
    const idle = this.#options.protection.webSocketIdleTimeout;
    if (idle > 0) watchTunnelIdle(socket, idle);
  }

  /** Resolves once every target with an active health check has been checked once. */
  firstHealthCheck(): Promise<void> {
    return this.#health.firstRound();
  }

  stats(): BalancerStats {
    const targets = this.pool.targets.map(
      (t): TargetStats => ({
        url: t.key,
        weight: t.configuredWeight,
        effectiveWeight: t.weight,
        state: t.state,
        inFlight: t.inFlight,
        queued: this.#queue?.waiting(t) ?? 0,
        total: t.total,
        errors: t.errors,
        latency: Math.round(t.latency * 100) / 100,
        ...this.#health.status(t),
      }),
    );
    return {
      strategy: this.strategy.name,
      ready: this.pool.ready.length,
      panic: this.pool.panic,
      inFlight: this.#inFlight,
      unavailable: this.#unavailable,
      retries: this.#retries,
      cache: this.#cache?.stats(),
      targets,
    };
  }

  /** Refuses new requests, stops health checks, closes tunnels, waits for in-flight requests, then closes upstream connections. Every call gets the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#queue?.close();
    this.#health.close();
    this.#budget?.close();
    for (const socket of this.#tunnels) socket.destroy();
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    this.#engine.close();
  }

  /** Ends the bookkeeping of an attempt; called once per exchange by its last event. */
  finish(exchange: Exchange): void {
    if (exchange.ended) return;
    exchange.ended = true;
    exchange.clearTimers();
    this.#tunnels.delete(exchange.client as Duplex);
    const target = exchange.target;
    target.inFlight--;
    this.#inFlight--;
    if (exchange.attempt > 1) this.#breaker?.retryEnded();
    this.strategy.onEnd?.(target, exchange);
    this.pool.released(target);
    this.#queue?.released(target);
    this.observer?.ended(exchange);
    if (exchange.span !== undefined) endSpan(exchange);
    if (this.#inFlight === 0 && this.#idle !== undefined) this.#idle();
  }

  // Engine events. They run per request, so they are methods reading state off the exchange, not closures.

  readonly request = (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined) return;
    exchange.proxyReq = proxyReq;
    if (exchange.ended || exchange.error !== undefined) {
      proxyReq.destroy();
      return;
    }
    if (exchange.tryExpired) {
      proxyReq.destroy(new UpstreamTimeoutError('per-try timeout'));
      return;
    }
    this.#watchUpstream(proxyReq);
    runHook('proxyReq', this.#options.on?.proxyReq, proxyReq, req, res);
  };

  readonly response = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined) return;
    const status = proxyRes.statusCode ?? 0;
    exchange.responded(status);
    if (status >= 500 && this.#health.count5xx) this.#health.failure(exchange.target, `status ${status}`);
    else this.#health.success(exchange.target);
    exchange.proxyRes = proxyRes;
    attach(proxyRes, exchange);
    proxyRes.on('close', onUpstreamResponseClose);
    const headers = proxyRes.headers;
    stripResponseHopByHop(headers);
    // The client's own keep-alive choice, not the upstream's, governs the client connection.
    headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
    for (const name of this.#options.hideHeaders) delete headers[name];
    if (this.#options.rewriteLocation) this.#rewriteLocations(proxyRes, exchange.target, req);
    runHook('proxyRes', this.#options.on?.proxyRes, proxyRes, req, res);
  };

  readonly error = (err: Error, req: IncomingMessage, res: ServerResponse, target: Target | undefined): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined) {
      respondError(res, statusForError(err));
      return;
    }
    // A late error from an attempt already retried elsewhere is not the current attempt's failure.
    if ((target !== undefined && target !== exchange.target) || !exchange.failed(err)) return;
    // A client that hung up is not the upstream's fault, and is owed nothing more.
    if (req.socket.destroyed) return;
    exchange.target.errors++;
    this.#health.failure(exchange.target, (err as NodeJS.ErrnoException).code ?? err.message);
    if (this.#retried(exchange, err, req, res)) return;
    const status = statusForError(err);
    if (logProxy.enabled) logProxy('%d for %s %s via %s (attempt %d): %s', status, req.method, req.url, exchange.target.key, exchange.attempt, err.message);
    this.answerFailure(exchange, err, status);
  };

  /** Answers a request that failed for good: the `error` hook first, then the default status page if the hook left it unanswered. */
  answerFailure(exchange: Exchange, err: Error, status: number): void {
    const res = exchange.client as ServerResponse;
    runHook('error', this.#options.on?.error, err, exchange.req, res, exchange.target);
    if (!res.headersSent && !res.writableEnded) respondError(res, status);
  }

  /** The upstream body ended short: the client connection is cut, and the attempt counts as failed. */
  truncated(exchange: Exchange): void {
    const err = new Error('upstream response ended before its body was complete');
    if (exchange.failed(err)) {
      exchange.target.errors++;
      this.#health.failure(exchange.target, 'truncated body');
    }
    exchange.client.destroy();
  }

  readonly upgradeRequest = (proxyReq: ClientRequest, _req: IncomingMessage, socket: Duplex): void => {
    const exchange = exchangeOf(socket);
    if (exchange === undefined) return;
    exchange.proxyReq = proxyReq;
    attach(proxyReq, exchange);
    this.#watchUpstream(proxyReq);
    watchHandshake(proxyReq);
  };

  readonly upgradeError = (err: Error, req: IncomingMessage, socket: Duplex): void => {
    const exchange = exchangeOf(socket);
    if (exchange === undefined || !exchange.failed(err)) return;
    exchange.target.errors++;
    this.#health.failure(exchange.target, (err as NodeJS.ErrnoException).code ?? err.message);
    const status = statusForError(err);
    if (logProxy.enabled) logProxy('%d for upgrade %s via %s: %s', status, req.url, exchange.target.key, err.message);
    if (exchange.status === 0) refuseHandshake(socket, status);
  };

  /**
   * Sends a failed attempt to another target when that is safe: nothing reached the client yet,
   * the method is idempotent (or the failure is a reset of a reused keep-alive socket, which the
   * upstream never processed), the body can be replayed, and retries and budget allow it.
   */
  #retried(exchange: Exchange, err: Error, req: IncomingMessage, res: ServerResponse): boolean {
    const policy = this.#retry;
    if (policy === undefined || res.headersSent || exchange.status !== 0 || exchange.pastDeadline || this.#closed) return false;
    if (exchange.attempt > policy.retries) return false;
    const staleSocket = exchange.proxyReq?.reusedSocket === true && (err as NodeJS.ErrnoException).code === 'ECONNRESET';
    if (!staleSocket && !policy.methods.has(req.method ?? '')) return false;
    if (exchange.body !== undefined && !exchange.body.replayable) return false;
    const next = this.#nextTarget(exchange, req, staleSocket);
    if (next === undefined || this.#queue?.hasRoom(next) === false || this.#breaker?.retriesCapped(exchange.attempt > 1) === true || !this.#budget!.take())
      return false;
    this.#retries++;
    this.#breaker?.retryStarted();
    if (logProxy.enabled) logProxy('retrying %s %s on %s after %s on %s', req.method, req.url, next.key, err.message, exchange.target.key);
    const retry = this.#start(next, req, res);
    exchange.handOver(retry);
    this.#tracing?.start(retry);
    this.finish(exchange);
    this.notify('retry', { method: req.method ?? '', url: req.url ?? '', from: exchange.target, to: next, attempt: retry.attempt, error: err });
    this.#engine.web(next, req, res, exchange.body?.replay() ?? emptyBody());
    return true;
  }

  /** The strategy's choice if not tried yet, else the next untried ready target after it. */
  #nextTarget(exchange: Exchange, req: IncomingMessage, allowSame: boolean): Target | undefined {
    const ready = this.pool.ready;
    if (ready.length === 0) return undefined;
    const tried = [...(exchange.tried ?? []), exchange.target];
    const picked = this.strategy.pick(ready, req);
    if (picked !== undefined && !tried.includes(picked)) return picked;
    const start = picked === undefined ? 0 : ready.indexOf(picked);
    for (let i = 1; i <= ready.length; i++) {
      const candidate = ready[(start + i) % ready.length]!;
      if (!tried.includes(candidate)) return candidate;
    }
    return allowSame ? exchange.target : undefined;
  }

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
    const perTry = this.#retry?.perTryTimeout ?? 0;
    if (perTry > 0) exchange.tryTimer = setTimeout(onTryTimeout, perTry, exchange);
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

function onTryTimeout(exchange: Exchange): void {
  exchange.tryTimer = undefined;
  if (exchange.proxyReq === undefined) exchange.tryExpired = true;
  else exchange.proxyReq.destroy(new UpstreamTimeoutError('per-try timeout'));
}

function onDeadline(first: Exchange): void {
  // The timer was armed for the first attempt; a retry may be the one running now.
  const current = exchangeOf(first.client) ?? first;
  current.deadline = undefined;
  current.pastDeadline = true;
  const err = new UpstreamTimeoutError('upstream response deadline');
  if (current.proxyReq !== undefined) {
    current.proxyReq.destroy(err);
    return;
  }
  // Still waiting for a socket: answer now; the engine's request, when it comes, is dropped.
  if (current.failed(err)) {
    current.target.errors++;
    current.owner.answerFailure(current, err, 504);
  }
}

function onClientClose(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  // The client left before the response was complete: stop the upstream work too.
  if (!this.writableFinished && exchange.proxyRes?.complete !== true) exchange.proxyReq?.destroy();
  exchange.owner.finish(exchange);
}

function onUpstreamResponseClose(this: IncomingMessage): void {
  // An upstream body cut short must not reach the client as a complete response.
  if (this.complete) return;
  const exchange = exchangeOf(this);
  if (exchange !== undefined) exchange.owner.truncated(exchange);
}
