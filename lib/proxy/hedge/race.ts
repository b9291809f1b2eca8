import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { clampDelay } from '../../timer.js';
import { attach, type Exchange, type ExchangeRace, exchangeOf } from '../exchange.js';

/** What a race reports to: the balancer's hedging. */
export interface RaceJudge {
  /** The delay passed with no response head: the hedge is due. */
  due(race: HedgeRace): void;
  /** The first attempt's time to response head, ms; or, when it was cancelled, how long it had waited (a lower bound). */
  sampled(ms: number): void;
  /** The hedge's response head came first. */
  hedgeWon(): void;
  /** An attempt was cancelled: the other one answered, or the client left. */
  cancelled(): void;
}

/**
 * One hedgeable request: its first attempt, the hedge once sent, the timer until it is due. Both
 * attempts may answer; the first response head wins and the other is cancelled: its upstream
 * request destroyed (so its connection is not reused half-read, and its target sees the close),
 * its exchange ended without counting as a failure of its target. The race doubles as the holder
 * through which the engine's events find the hedge (the client response holds the first attempt).
 */
export class HedgeRace implements ExchangeRace {
  primary: Exchange | undefined;
  hedge: Exchange | undefined = undefined;
  #timer: NodeJS.Timeout | undefined = undefined;
  readonly #judge: RaceJudge;

  /** `delay`: ms until the hedge is due; NaN (a percentile not learned yet) arms no timer, the race only samples. */
  constructor(judge: RaceJudge, primary: Exchange, delay: number) {
    this.#judge = judge;
    this.primary = primary;
    primary.race = this;
    if (!Number.isNaN(delay)) this.#timer = setTimeout(onDue, clampDelay(delay), this);
  }

  /** Enters `hedge`, just sent, as the second attempt of the request. */
  join(hedge: Exchange): void {
    const primary = this.primary!;
    hedge.firstStartedAt = primary.firstStartedAt;
    hedge.tried = [...(primary.tried ?? []), primary.target];
    hedge.body = primary.body;
    hedge.race = this;
    this.hedge = hedge;
    attach(this, hedge);
  }

  settle(winner: Exchange): ServerResponse {
    this.#stop();
    const loser = this.#other(winner);
    if (winner === this.primary) this.#judge.sampled(winner.latency);
    else this.#judge.hedgeWon();
    this.#leave(winner);
    if (loser !== undefined) this.#cancel(loser, winner);
    const res = winner.client as ServerResponse;
    attach(res, winner);
    return res;
  }

  outlived(exchange: Exchange, status: number): boolean {
    const other = this.#other(exchange);
    this.#leave(exchange);
    if (other === undefined || exchange.pastDeadline) {
      // Alone, or past the request's deadline: the race is over and the usual retry rules apply.
      this.#stop();
      if (other !== undefined) this.#cancel(other, exchange);
      return false;
    }
    // A real failure of its target (the caller has counted it); the other attempt answers instead,
    // and should it fail too, its retry avoids this target as well.
    if (other.tried?.includes(exchange.target) !== true) other.tried = [...(other.tried ?? []), exchange.target];
    handOn(exchange, other);
    if (status !== 0) {
      exchange.responded(status);
      exchange.owner.passed(exchange.target, status, exchange.latency);
    }
    exchange.owner.finish(exchange);
    return true;
  }

  ended(exchange: Exchange): void {
    this.#stop();
    const other = this.#other(exchange);
    this.#leave(exchange);
    if (other !== undefined) this.#cancel(other, exchange);
  }

  /** The timer fired: the race is still on unless an answer or the client's leaving cleared it. */
  fire(): void {
    this.#timer = undefined;
    this.#judge.due(this);
  }

  #other(exchange: Exchange): Exchange | undefined {
    return exchange === this.primary ? this.hedge : this.primary;
  }

  #leave(exchange: Exchange): void {
    exchange.race = undefined;
    if (this.primary === exchange) this.primary = undefined;
    else if (this.hedge === exchange) this.hedge = undefined;
  }

  #stop(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #cancel(loser: Exchange, survivor: Exchange): void {
    if (loser === this.primary) this.#judge.sampled(performance.now() - loser.startedAt);
    this.#leave(loser);
    handOn(loser, survivor);
    // Its late 'error' finds an ended exchange (or, through the client response, another target's) and is ignored.
    loser.proxyReq?.destroy();
    this.#judge.cancelled();
    loser.owner.finish(loser);
  }
}

/** What belongs to the request, not the attempt, passes from an attempt leaving the race to the one that stays: the deadline, and the client response's pointer. */
function handOn(from: Exchange, to: Exchange): void {
  if (from.deadline !== undefined) {
    to.deadline = from.deadline;
    from.deadline = undefined;
  }
  if (exchangeOf(from.client) === from) attach(from.client, to);
}

function onDue(race: HedgeRace): void {
  race.fire();
}
