import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { logProxy } from '../../observe/log.js';
import { mayHaveBody } from '../../protect/reject.js';
import type { Target } from '../../target.js';
import type { Exchange } from '../exchange.js';
import { parsedBody } from '../parsed-body.js';
import { RetryBudget } from '../retry/policy.js';
import { bodyStream, emptyBody } from '../retry/request-body.js';
import { LatencyWindow } from './latency-window.js';
import type { HedgePolicy } from './options.js';
import { HedgeRace, type RaceJudge } from './race.js';

/** What hedging needs of the balancer. */
export interface HedgeHost {
  /** A target for the hedge of `primary` other than those it tried, with room, within the circuit breaker's retry cap; undefined when none. */
  hedgeTarget(primary: Exchange): Target | undefined;
  /** Sends `primary`'s request to `target` as its hedge, the engine's events finding it through `holder`; undefined if the engine refused it. */
  sendHedge(primary: Exchange, target: Target, holder: object, body: Readable): Exchange | undefined;
}

/** `lb.stats().hedging`. */
export interface HedgeStats {
  /** Hedges sent. */
  sent: number;
  /** Requests answered by their hedge (its response head came first, or the first attempt failed meanwhile). */
  won: number;
  /** Attempts cancelled: the other attempt of their request answered first, or the client left. */
  cancelled: number;
  /** Hedges due but not sent because `maxExtraLoad` was spent. */
  budgetRefused: number;
  /** Hedges due but not sent because no other target was ready (or had room, or the circuit breaker capped retries). */
  noTarget: number;
  /** The delay after which a hedge goes now, ms (fixed, or the learned percentile); null while the percentile is not learned yet. */
  delay: number | null;
}

/**
 * Hedged requests of one balancer: which requests race, when their hedge is due, the budget it
 * spends, and the figures. Costs nothing unless `hedge` is set: the balancer holds none then.
 */
export class Hedging implements RaceJudge {
  readonly #policy: HedgePolicy;
  readonly #host: HedgeHost;
  readonly #budget: RetryBudget;
  readonly #window: LatencyWindow | undefined;
  #sent = 0;
  #won = 0;
  #cancelled = 0;
  #budgetRefused = 0;
  #noTarget = 0;

  constructor(policy: HedgePolicy, host: HedgeHost) {
    this.#policy = policy;
    this.#host = host;
    // Finagle's backup budget is a retry budget with maxExtraLoad as its percentage; without its floor
    // of 10 a second, so the extra load stays within maxExtraLoad at any rate.
    this.#budget = new RetryBudget(policy.maxExtraLoad * 100, 0);
    this.#window = policy.percentile === undefined ? undefined : new LatencyWindow(policy.percentile);
  }

  /** A request was just sent to its first target: it races if its method is hedged and its body can be sent again. */
  arm(exchange: Exchange): void {
    if (!this.#policy.methods.has(exchange.req.method ?? '') || exchange.expectsContinue || !replayable(exchange)) return;
    this.#budget.request();
    new HedgeRace(this, exchange, this.#delay());
  }

  due(race: HedgeRace): void {
    const primary = race.primary;
    if (primary === undefined || primary.status !== 0 || primary.error !== undefined || (primary.client as ServerResponse).headersSent) return;
    // A body past retry.maxBodyBytes since the request was armed is no longer kept.
    if (primary.body?.replayable === false) return;
    const target = this.#host.hedgeTarget(primary);
    if (target === undefined) {
      this.#noTarget++;
      return;
    }
    if (!this.#budget.take()) {
      this.#budgetRefused++;
      if (logProxy.enabled) logProxy('no hedge for %s %s: hedge.maxExtraLoad spent', primary.req.method, primary.req.url);
      return;
    }
    const hedge = this.#host.sendHedge(primary, target, race, bodyOf(primary));
    if (hedge === undefined) return;
    race.join(hedge);
    this.#sent++;
  }

  sampled(ms: number): void {
    this.#window?.record(ms);
  }

  hedgeWon(): void {
    this.#won++;
  }

  cancelled(): void {
    this.#cancelled++;
  }

  stats(): HedgeStats {
    const delay = this.#delay();
    return {
      sent: this.#sent,
      won: this.#won,
      cancelled: this.#cancelled,
      budgetRefused: this.#budgetRefused,
      noTarget: this.#noTarget,
      delay: Number.isNaN(delay) ? null : Math.round(delay * 100) / 100,
    };
  }

  close(): void {
    this.#budget.close();
  }

  /** Ms until a hedge is due: the fixed delay, or the learned percentile (at least `minDelay`); NaN before it is learned. */
  #delay(): number {
    const fixed = this.#policy.delay;
    if (fixed !== undefined) return fixed;
    const learned = this.#window!.value;
    return Math.max(learned, this.#policy.minDelay);
  }
}

/** Whether the request's body can be sent to a second target: none, one a body parser read, or one kept for retries. */
function replayable(exchange: Exchange): boolean {
  return !mayHaveBody(exchange.req) || exchange.body?.replayable === true || parsedBody(exchange.req) !== undefined;
}

function bodyOf(exchange: Exchange): Readable {
  if (exchange.body !== undefined) return exchange.body.replay();
  const parsed = parsedBody(exchange.req);
  return parsed === undefined ? emptyBody() : bodyStream(parsed);
}
