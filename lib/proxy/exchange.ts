import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { RequestBody } from './retry/request-body.js';
import type { Outcome } from '../strategies/strategy.js';
import type { Target } from '../target.js';

// Where each object of an exchange finds its exchange: the client response or socket, the upstream
// request and response. A plain string-named property on each, Express's prototype-swapped req and
// res included: a WeakMap for those cost more in garbage collection (ephemerons, one per request)
// than the whole rest of the exchange's bookkeeping (measured: Express 5 went from 0.67x to 1.1x
// plain http-proxy in Express). One name, set on every holder the same way.
type WithExchange = { _proxyBalancerExchange?: Exchange };

/** What an exchange reports to (the balancer). */
export interface ExchangeOwner {
  /** The exchange ended; called exactly once. */
  finish(exchange: Exchange): void;
  /** The target answered with a response head (any status) after `latency` ms. */
  passed(target: Target, status: number, latency: number): void;
  /** An attempt on the target failed (connect error, reset, timeout, bad response). */
  failedOn(target: Target, why: string): void;
  /** Sends a failed attempt (or, with `status`, one answered with a status listed in `retry.onStatus`) to another target when that is safe; true if it did. */
  retried(exchange: Exchange, err: Error, status?: number): boolean;
  /** Answers a request that failed for good (502/504, or a cut connection once the head is out). */
  answerFailure(exchange: Exchange, err: Error, status: number): void;
}

/** The race of a hedged request's attempts (lib/proxy/hedge/race.ts) while more than one may answer. */
export interface ExchangeRace {
  /** `winner`'s response head came first: the other attempt is cancelled. Returns the client response to relay to. */
  settle(winner: Exchange): ServerResponse;
  /** `exchange` failed, or got a status in `retry.onStatus`: true when another attempt carries on in its place (it is finished). */
  outlived(exchange: Exchange, status: number): boolean;
  /** `exchange` ended (its client left, or it was answered): any other attempt is cancelled. */
  ended(exchange: Exchange): void;
}

/**
 * One proxied request (or WebSocket tunnel): the target it went to and what became of it. It is
 * the `Outcome` strategies hear in `onEnd`, so nothing is allocated to report it.
 */
export class Exchange implements Outcome {
  status = 0;
  latency = Number.NaN;
  error: Error | undefined = undefined;
  /** The upstream request, once the engine created it. */
  proxyReq: ClientRequest | undefined = undefined;
  /** The upstream response, once its head arrived. */
  proxyRes: IncomingMessage | undefined = undefined;
  /** The upstream socket of an open WebSocket tunnel. */
  tunnel: Duplex | undefined = undefined;
  /** Pending `timeout` deadline of the whole request (carried over to retries). */
  deadline: NodeJS.Timeout | undefined = undefined;
  /** Pending per-try timeout of this attempt. */
  tryTimer: NodeJS.Timeout | undefined = undefined;
  /** Pending back-off of a retry not sent yet (`retry.backoff`). */
  backoff: NodeJS.Timeout | undefined = undefined;
  /** Set when the per-try timeout passed before the engine produced the upstream request. */
  tryExpired = false;
  /** When a gRPC call's `grpc-timeout` deadline ends (performance.now() ms); 0 for none. */
  grpcDeadlineAt = 0;
  /** Set when the request's deadline passed: no more retries. */
  pastDeadline = false;
  /** 1 for the first attempt, 2 for the first retry... */
  attempt = 1;
  /** Targets earlier attempts failed on. */
  tried: Target[] | undefined = undefined;
  /** The client sent `Expect: 100-continue` and has had no 100 yet: the target decides whether the body comes. */
  expectsContinue = false;
  /** The kept request body, for replay on a retry. */
  body: RequestBody | undefined = undefined;
  /** Set while a hedged request's attempts race (`hedge` option); undefined otherwise. */
  race: ExchangeRace | undefined = undefined;
  ended = false;
  /** This attempt's OpenTelemetry span, while tracing records it (observe/tracing.ts). */
  span: unknown = undefined;
  readonly startedAt = performance.now();
  /** When the request's first attempt started (`retry.tryDuration` counts from it). */
  firstStartedAt = this.startedAt;

  constructor(
    /** Told when the exchange ends, exactly once. */
    readonly owner: ExchangeOwner,
    readonly target: Target,
    readonly req: IncomingMessage,
    /** The client response (HTTP) or socket (WebSocket). */
    readonly client: ServerResponse | Duplex,
  ) {}

  /** Records the arrival of the upstream response head. */
  responded(status: number): void {
    this.status = status;
    this.latency = performance.now() - this.startedAt;
    this.target.recordLatency(this.latency);
    this.clearTimers();
  }

  clearTimers(): void {
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    if (this.tryTimer !== undefined) clearTimeout(this.tryTimer);
    if (this.backoff !== undefined) clearTimeout(this.backoff);
    this.deadline = this.tryTimer = this.backoff = undefined;
  }

  /** Moves what belongs to the request, not the attempt, onto the next attempt. */
  handOver(next: Exchange): void {
    next.attempt = this.attempt + 1;
    next.firstStartedAt = this.firstStartedAt;
    next.tried = [...(this.tried ?? []), this.target];
    next.body = this.body;
    next.deadline = this.deadline;
    next.grpcDeadlineAt = this.grpcDeadlineAt;
    this.deadline = undefined;
  }

  /** Records a failure; only the first one counts. Returns false for a repeat. */
  failed(err: Error): boolean {
    if (this.error !== undefined || this.ended) return false;
    this.error = err;
    return true;
  }
}

export function exchangeOf(holder: object): Exchange | undefined {
  return (holder as WithExchange)._proxyBalancerExchange;
}

export function attach(holder: object, exchange: Exchange | undefined): void {
  (holder as WithExchange)._proxyBalancerExchange = exchange;
}
