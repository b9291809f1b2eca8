import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { SessionAffinity } from './affinity/session-affinity.js';
import { isDetached, type ResponseCache } from './cache/response-cache.js';
import { ResponseEvents } from './observe/access-log.js';
import { endSpan, Tracing } from './observe/tracing.js';
import { ClientIpResolver } from './proxy/client-ip.js';
import { ProxyEngine } from './proxy/engines/http1/engine.js';
import { cutResponse, isUnprocessed, respondError } from './proxy/errors.js';
import { grpcStatusForError } from './grpc/error-status.js';
import { forwardRemaining, grpcDeadline } from './grpc/timeout.js';
import { Http2Engine } from './proxy/engines/http2/engine.js';
import { EngineByProtocol } from './proxy/engines/by-protocol.js';
import type { Engine } from './proxy/engines/engine.js';
import type { BalancerEvents } from './observe/events.js';
import { attach, Exchange, type ExchangeOwner } from './proxy/exchange.js';
import { armDeadline, armTryTimeout, watchClientResponse } from './proxy/exchange-timers.js';
import { addForwardingHeaders } from './proxy/forwarded.js';
import { HealthSupervisor } from './health/supervisor.js';
import { DiscoveryFeeds } from './discovery/feed.js';
import { stripRequestHopByHop, stripUpgradeHopByHop } from './proxy/hop-by-hop.js';
import { runHook } from './proxy/hooks.js';
import { stripUnkeyedHeaders } from './proxy/unkeyed-headers.js';
import { logProxy, logStrategy } from './observe/log.js';
import { toOriginForm } from './proxy/origin-form.js';
import type { Admission } from './protect/admission.js';
import type { CircuitBreaker } from './protect/circuit-breaker.js';
import type { ConnectionQueue } from './protect/connection-queue.js';
import { refusedHead, refusedUpgradeHead, refuseUnforwardable } from './protect/request-head.js';
import { createGuards } from './protect/guards.js';
import { countBody } from './protect/request-limits.js';
import { watchPipelined } from './protect/pipelining.js';
import { watchTunnelIdle } from './protect/tunnel-idle.js';
import type { ResolvedOptions } from './options.js';
import type { ExchangeObserver } from './observe/recorder.js';
import { Pool } from './pool.js';
import { adaptHttp2Request, isHttp2 } from './proxy/http2.js';
import { afterFramesRead } from './proxy/h2-settle.js';
import type { PrematureResets } from './protect/premature-reset.js';
import type { AdaptiveConcurrency } from './protect/adaptive-concurrency.js';
import type { LoadShedder } from './protect/load-shedding.js';
import { rejectRequest, rejectUpgrade } from './protect/reject.js';
import { isHttp2WebSocket, tunnelHttp2WebSocket } from './proxy/http2-websocket.js';
import { type MountScope, outOfScope } from './proxy/mount-scope.js';
import { parsedBody } from './proxy/parsed-body.js';
import { nextTarget, RetryBudget, type RetryPolicy } from './proxy/retry/policy.js';
import { type HedgeHost, Hedging } from './proxy/hedge/hedging.js';
import { bodyStream, emptyBody, RequestBody } from './proxy/retry/request-body.js';
import { backoffDelay, sendAfter } from './proxy/retry/backoff.js';
import { retryScope } from './proxy/retry/decision.js';
import { type StatusRetry, statusRetry } from './proxy/retry/status.js';
import { type BalancerStats, collectStats } from './observe/stats.js';
import { StoreWatch } from './observe/store-watch.js';
import type { Strategy } from './strategies/strategy.js';
import { roundRobin } from './strategies/round-robin.js';
import type { Target } from './target.js';
import { refuseHandshake, watchClientSocket } from './proxy/tunnel.js';
import { UpstreamEvents, waitsForContinue } from './proxy/upstream-events.js';
import { clientGone } from './proxy/client-gone.js';
import { Mirror } from './proxy/mirror/mirror.js';

/** The state behind one `loadBalance()` middleware: pool, strategy, health, engine and every exchange. */
export class Balancer extends EventEmitter<BalancerEvents> implements ExchangeOwner, HedgeHost {
  readonly pool: Pool;
  readonly strategy: Strategy;
  readonly #options: ResolvedOptions;
  readonly #engine: Engine;
  readonly #health: HealthSupervisor;
  readonly #resolver: ClientIpResolver | undefined;
  readonly #retry: RetryPolicy | undefined;
  readonly #budget: RetryBudget | undefined;
  readonly #statusRetry: StatusRetry | undefined;
  readonly #hedging: Hedging | undefined;
  readonly #tunnels = new Set<Duplex>();
  readonly #cache: ResponseCache | undefined;
  readonly #admission: Admission | undefined;
  readonly #queue: ConnectionQueue | undefined;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #resets: PrematureResets | undefined;
  readonly #concurrency: AdaptiveConcurrency | undefined;
  readonly #shedder: LoadShedder | undefined;
  readonly #affinity: SessionAffinity | undefined;
  readonly #discovery: DiscoveryFeeds | undefined;
  readonly #responses: ResponseEvents;
  readonly #tracing: Tracing | undefined;
  readonly #stores: StoreWatch;
  readonly #mounts: MountScope;
  readonly #mirror: Mirror | undefined;
  /** The middleware function `loadBalance()` returned, to recognise it as a server's request listener. */
  entry: unknown = undefined;
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
    this.#mounts = options.mounts;
    this.pool = new Pool(options.targets, options.panicThreshold, options.http2);
    this.strategy = options.strategy ?? roundRobin();
    this.#resolver = options.trustProxy === false ? undefined : new ClientIpResolver(options.trustProxy, options.trustedHeader);
    this.#retry = options.retry;
    this.#budget = options.retry && new RetryBudget(options.retry.budgetPercent, options.retry.minRetries);
    this.#statusRetry = statusRetry(options.retry, this.pool);
    this.#hedging = options.hedge && new Hedging(options.hedge, this);
    this.#health = new HealthSupervisor(this.pool, options, this.notify);
    this.#affinity = options.affinity && new SessionAffinity(options.affinity);
    const events = UpstreamEvents.from(options, this.#affinity, this.#statusRetry);
    this.#engine = new EngineByProtocol(new ProxyEngine(options, events), () => new Http2Engine(options, events));
    this.#cache = options.cache?.cache;
    this.#tracing = options.tracing ? new Tracing() : undefined;
    this.#responses = new ResponseEvents(this.#resolver, (info, req, res) => this.notify('response', info, req, res));
    const guards = createGuards(options.protection, options.retryAfter, this.#resolver, {
      forward: (req, res) => this.#forward(req, res),
      forwardUpgrade: (req, socket, head) => this.#tunnel(req, socket, head),
      proxy: (req, res) => this.#proxy(req, res),
      dispatch: (target, req, res) => this.#dispatch(target, req, res),
      eligible: (target) => this.pool.ready.includes(target),
      notify: this.notify,
    });
    this.#admission = guards.admission;
    this.#queue = guards.queue;
    this.#breaker = guards.breaker;
    this.#resets = guards.resets;
    this.#mirror =
      options.mirror &&
      new Mirror(options.mirror, options, {
        listening: () => this.listenerCount('mirror') > 0,
        report: (info) => this.notify('mirror', info),
      });
    this.#concurrency = guards.concurrency;
    this.#shedder = guards.shedder;
    this.#stores = new StoreWatch([this.#cache?.store.guard, options.protection.rateLimit?.store.guard], this.notify);
    // Last: a source may report its first set from start(), and the pool's observers must be in place.
    this.#discovery = options.discovery.length === 0 ? undefined : new DiscoveryFeeds(options.discovery, this.pool);
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
    if (this.#mounts.learning) this.#mounts.saw(req);
    if (this.listenerCount('response') > 0 && !isDetached(req)) this.#responses.watch(req, res);
    // Before anything else is spent on it: an overloaded process answers at once (loadShedding).
    if (this.#shedder?.sheds() === true) {
      rejectRequest(req, res, this.#shedder.rejection);
      return;
    }
    if (isHttp2(req)) {
      this.#resets?.watch(req);
      if (!adaptHttp2Request(req)) {
        respondError(res, 400);
        return;
      }
      // A CONNECT reaches a request listener only over HTTP/2; only the WebSocket kind is tunnelled.
      if (req.method === 'CONNECT' && !isHttp2WebSocket(req)) {
        respondError(res, 405);
        return;
      }
    }
    if (refusedHead(req, res, this.#options.protection.maxHeaders)) return;
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
    if (clientGone(res)) return;
    // HTTP/2: not before the frames read with this stream are processed (lib/proxy/h2-settle.ts).
    if (isHttp2(req)) afterFramesRead(this.#route, req, res);
    else this.#route(req, res);
  }

  /** Chooses the target of a request and sends it there, or queues or refuses it. */
  readonly #route = (req: IncomingMessage, res: ServerResponse): void => {
    let target = this.#breaker?.admits(this.#inFlight) === false ? this.#refuse('circuit breaker: maxRequests in flight') : this.#choose(req);
    // A target at its adaptive limit passes the request to the one with most room, or it is refused now: no queue builds up.
    if (target !== undefined && this.#concurrency !== undefined) target = this.#concurrency.admit(target, this.pool.ready);
    if (target === undefined) {
      respondError(res, 503, this.#options.retryAfter);
      return;
    }
    if (this.#queue === undefined || this.#queue.admit(target, req, res)) this.#dispatch(target, req, res);
  };

  /** Sends a request to `target` (whose connection slot, when capped, is free). */
  #dispatch(target: Target, req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'CONNECT') {
      this.#tunnelHttp2(target, req, res);
      return;
    }
    const expectsContinue = waitsForContinue(req, res);
    stripRequestHopByHop(req.headers, this.#options.keepAlive);
    this.#addForwarding(req);
    const exchange = this.#start(target, req, res);
    exchange.expectsContinue = expectsContinue;
    this.#tracing?.start(exchange);
    watchClientResponse(res);
    res.on('error', ignore);
    // gRPC calls come over HTTP/2; a `grpc-timeout` of theirs bounds the deadline too.
    const grpcTimeout = req.httpVersionMajor === 2 ? req.headers['grpc-timeout'] : undefined;
    const timeout = typeof grpcTimeout !== 'string' ? this.#options.timeout : grpcDeadline(exchange, req, grpcTimeout, this.#options.timeout);
    if (timeout > 0) armDeadline(exchange, timeout);
    const parsed = parsedBody(req);
    if (parsed !== undefined) {
      req.headers['content-length'] = String(parsed.length);
      delete req.headers['transfer-encoding'];
    }
    if (this.#retry !== undefined) {
      this.#budget!.request();
      exchange.body = parsed === undefined ? RequestBody.record(req, this.#retry.maxBodyBytes) : RequestBody.of(parsed);
    }
    // Before the body is piped upstream, with the forwarding headers the real request carries.
    if (this.#mirror !== undefined) this.#mirror.copy(req, parsed);
    const maxBodySize = this.#options.protection.maxBodySize;
    if (maxBodySize > 0) countBody(req, res, maxBodySize);
    if (this.#hedging !== undefined) this.#hedging.arm(exchange);
    try {
      this.#engine.web(target, req, res, parsed === undefined ? undefined : (exchange.body?.replay() ?? bodyStream(parsed)));
    } catch (err) {
      refuseUnforwardable(req, res, err);
    }
  }

  /** Tunnels an RFC 8441 WebSocket (extended CONNECT over HTTP/2) to a target's HTTP/1.1 WebSocket endpoint. */
  #tunnelHttp2(target: Target, req: IncomingMessage, res: ServerResponse): void {
    this.#addForwarding(req);
    const exchange = this.#start(target, req, res);
    this.#tunnels.add(res as unknown as Duplex);
    watchClientResponse(res);
    res.on('error', ignore);
    tunnelHttp2WebSocket(exchange, target, res, { tls: this.#options.agentOptions, changeOrigin: this.#options.changeOrigin });
  }

  /** Tunnels one WebSocket upgrade; the `server.on('upgrade')` entry point. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // First, before anything answers it: an upgrade outside the mount paths may be another listener's.
    if (!this.#mounts.admits(req, this.entry)) {
      outOfScope(req, socket);
      return;
    }
    socket.on('error', ignore);
    if (this.#shedder?.sheds() === true) {
      rejectUpgrade(socket, this.#shedder.rejection);
      return;
    }
    if (refusedUpgradeHead(req, socket, this.#options.protection.maxHeaders)) return;
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
    if (target === undefined || this.#queue?.hasRoom(target) === false || this.#concurrency?.hasRoom(target) === false) {
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

  /** `lb.upgrade` is in use: HTTP requests teach the mount paths from now on (unless `mountPath` named them). */
  upgradeInUse(): void {
    this.#mounts.learn();
  }

  /** Resolves once every target with an active health check has been checked once. */
  firstHealthCheck(): Promise<void> {
    return this.#health.firstRound();
  }

  /** Resolves once every discovery source has reported once. */
  firstDiscovery(): Promise<void> {
    return this.#discovery?.firstRound() ?? Promise.resolve();
  }

  stats(): BalancerStats {
    return collectStats(this.pool, this.strategy, {
      inFlight: this.#inFlight,
      unavailable: this.#unavailable,
      retries: this.#retries,
      queue: this.#queue,
      health: this.#health,
      heldOff: this.#statusRetry,
      cache: this.#cache,
      transformer: this.#options.transformer,
      affinity: this.#affinity,
      discovery: this.#discovery,
      stores: this.#stores,
      resets: this.#resets,
      hedging: this.#hedging,
      mirror: this.#mirror,
      concurrency: this.#concurrency,
      shedder: this.#shedder,
    });
  }

  /** Refuses new requests, stops health checks, closes tunnels, waits for in-flight requests, then closes upstream connections. Every call gets the same promise. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#discovery?.stop();
    this.#queue?.close();
    this.#health.close();
    this.#budget?.close();
    this.#hedging?.close();
    this.#statusRetry?.close();
    this.#stores.close();
    this.#mirror?.close();
    this.#shedder?.close();
    for (const socket of this.#tunnels) socket.destroy();
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    this.#engine.close();
  }

  /** Ends the bookkeeping of an attempt; called once per exchange by its last event. */
  finish(exchange: Exchange): void {
    if (exchange.ended) return;
    exchange.ended = true;
    exchange.clearTimers();
    if (exchange.race !== undefined) exchange.race.ended(exchange);
    const tunnel = this.#tunnels.delete(exchange.client as Duplex);
    const target = exchange.target;
    target.inFlight--;
    this.#inFlight--;
    if (exchange.attempt > 1) this.#breaker?.retryEnded();
    this.strategy.onEnd?.(target, exchange);
    this.pool.released(target);
    this.#queue?.released(target);
    // Time to the response head, as peakEwma and outlier detection read it; attempts without one say nothing of the target's queue.
    if (this.#concurrency !== undefined && !tunnel && exchange.latency >= 0) this.#concurrency.ended(target, exchange.latency, exchange.startedAt);
    this.observer?.ended(exchange);
    if (exchange.span !== undefined) endSpan(exchange);
    if (this.#inFlight === 0 && this.#idle !== undefined) this.#idle();
  }

  passed(target: Target, status: number, latency: number): void {
    if (status >= 500 && this.#health.count5xx) this.#health.failure(target, `status ${status}`, latency);
    else this.#health.success(target, latency);
  }

  failedOn(target: Target, why: string): void {
    this.#health.failure(target, why);
  }

  /** Answers a request that failed for good: the `error` hook first, then the default status page if the hook left it unanswered. */
  answerFailure(exchange: Exchange, err: Error, status: number): void {
    const res = exchange.client as ServerResponse;
    runHook('error', this.#options.on?.error, err, exchange.req, res, exchange.target);
    if (!res.headersSent && !res.writableEnded) respondError(res, status, undefined, grpcStatusForError(err, status));
    else cutResponse(res);
  }

  /**
   * Sends a failed attempt, or one answered with a status in `retry.onStatus`, to another target
   * when that is safe: nothing reached the client yet, `retryScope` allows it (method or
   * `condition`, replayable body, attempts left), a target is available, and budget (but for a
   * refused connection) and circuit breaker allow it. The retry waits for its back-off, if any, before it is sent.
   */
  retried(exchange: Exchange, err: Error, status = 0): boolean {
    // A hedged request's other attempt still running answers instead (lib/proxy/hedge/race.ts).
    if (exchange.race?.outlived(exchange, status)) return true;
    const policy = this.#retry;
    const req = exchange.req;
    const res = exchange.client as ServerResponse;
    if (policy === undefined || res.headersSent || this.#closed) return false;
    const scope = retryScope(policy, exchange, err, status);
    if (scope === undefined) return false;
    const next = nextTarget(this.pool.ready, this.strategy, exchange, req, scope.sameTarget, this.pool.standby);
    if (next === undefined || this.#queue?.hasRoom(next) === false || this.#breaker?.retriesCapped(exchange.attempt > 1) === true) return false;
    if (this.#concurrency?.hasRoom(next) === false) return false;
    // A request no target received (a refused connection, a refused stream) cost the target nothing:
    // retrying it spends none of the budget, which guards targets against retry storms (and would
    // otherwise run out riding a short restart).
    if (!isUnprocessed(err) && (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' && !this.#budget!.take()) return false;
    this.#retries++;
    this.#breaker?.retryStarted();
    if (logProxy.enabled) logProxy('retrying %s %s on %s after %s on %s', req.method, req.url, next.key, err.message, exchange.target.key);
    const retry = this.#start(next, req, res);
    exchange.handOver(retry);
    if (status !== 0) {
      exchange.responded(status);
      this.passed(exchange.target, status, exchange.latency);
    }
    this.#tracing?.start(retry);
    this.finish(exchange);
    this.notify('retry', {
      method: req.method ?? '',
      url: req.url ?? '',
      from: exchange.target,
      to: next,
      attempt: retry.attempt,
      error: err,
      status: status || undefined,
    });
    if (scope.extra) sendAfter(retry, policy.interval, policy.perTryTimeout, this.#send);
    else if (scope.backoff && policy.backoff !== undefined) sendAfter(retry, backoffDelay(policy.backoff, exchange.attempt), policy.perTryTimeout, this.#send);
    else this.#send(retry);
    return true;
  }

  hedgeTarget(primary: Exchange): Target | undefined {
    const breaker = this.#breaker;
    if (this.#closed || (breaker !== undefined && (!breaker.admits(this.#inFlight) || breaker.retriesCapped(false)))) return undefined;
    const next = nextTarget(this.pool.ready, this.strategy, primary, primary.req, false);
    return next === undefined || this.#queue?.hasRoom(next) === false ? undefined : next;
  }

  sendHedge(primary: Exchange, target: Target, holder: object, body: Readable): Exchange | undefined {
    const req = primary.req;
    this.#breaker?.retryStarted();
    const hedge = this.#start(target, req, primary.client, holder);
    // Counted as a retry by the circuit breaker (its cap on retries in flight): finish() releases it for attempts past the first.
    hedge.attempt = primary.attempt + 1;
    this.#tracing?.start(hedge);
    try {
      // The engine is given the holder as the response: the client response still holds the first attempt.
      this.#engine.web(target, req, holder as ServerResponse, body);
    } catch {
      this.finish(hedge);
      return undefined;
    }
    if (logProxy.enabled)
      logProxy('hedging %s %s on %s after %d ms on %s', req.method, req.url, target.key, performance.now() - primary.startedAt, primary.target.key);
    this.notify('hedge', { method: req.method ?? '', url: req.url ?? '', from: primary.target, to: target, after: performance.now() - primary.startedAt });
    return hedge;
  }

  readonly #send = (exchange: Exchange): void => {
    if (exchange.grpcDeadlineAt !== 0) forwardRemaining(exchange);
    this.#engine.retry(exchange.target, exchange.req, exchange.client as ServerResponse, exchange.body?.replay() ?? emptyBody());
  };

  #choose(req: IncomingMessage): Target | undefined {
    if (this.#closed) return this.#refuse('balancer closed');
    const ready = this.pool.ready;
    if (ready.length === 0) return this.#refuse('no target ready');
    this.#resolver?.resolve(req);
    const target = this.#affinity?.sticky(ready, req) ?? this.strategy.pick(ready, req);
    if (target === undefined) return this.#refuse(`${this.strategy.name} picked none`);
    return target;
  }

  #refuse(why: string): undefined {
    this.#unavailable++;
    if (logStrategy.enabled) logStrategy('503: %s', why);
    return undefined;
  }

  #addForwarding(req: IncomingMessage): void {
    stripUnkeyedHeaders(req, this.#options.stripHeaders);
    addForwardingHeaders(req, this.#options, this.#resolver?.trusts(req) ?? false);
  }

  /** Starts an attempt; `holder` is where the engine's events find it (the client but for a hedge). */
  #start(target: Target, req: IncomingMessage, client: ServerResponse | Duplex, holder: object = client): Exchange {
    const exchange = new Exchange(this, target, req, client);
    attach(holder, exchange);
    target.inFlight++;
    target.total++;
    this.#inFlight++;
    this.strategy.onStart?.(target, req);
    const perTry = this.#retry?.perTryTimeout ?? 0;
    if (perTry > 0) armTryTimeout(exchange, perTry);
    if (logProxy.enabled) logProxy('%s %s -> %s', req.method, req.url, target.key);
    return exchange;
  }
}

function ignore(): void {}
