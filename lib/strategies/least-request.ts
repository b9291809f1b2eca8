import type { Strategy, StrategyTargetStats } from './strategy.js';
import type { Target } from '../target.js';
import { finiteNumber, integer, optionsObject, markFactory } from '../validate.js';
import { IndexHeap } from './index-heap.js';

export interface LeastRequestOptions {
  /** Targets sampled per pick when all weights are equal, the fewest in flight winning; integer ≥ 2, default 2 (Envoy's `choice_count`). */
  choiceCount?: number;
  /**
   * How strongly requests in flight lower a target's share when weights differ: effective weight =
   * weight / (inFlight + 1) ^ bias; number ≥ 0, default 1 (Envoy's `active_request_bias`). 0 is plain
   * weighted round robin.
   */
  activeRequestBias?: number;
}

const FN = 'leastRequest';
const OPTIONS = ['choiceCount', 'activeRequestBias'];

/**
 * Envoy's LEAST_REQUEST. With equal weights, `choiceCount` distinct targets are sampled at random
 * and the one with the fewest requests in flight wins (the first sampled on a tie), in O(choiceCount).
 *
 * With unequal weights (declared, or while slow start ramps a target), an earliest-deadline-first
 * scheduler hands out turns in O(log n): a target's next deadline is the current one plus
 * 1 / effective weight, its effective weight read when it is picked, as Envoy's EDF scheduler does.
 * A loaded target's turns thus come further apart until its requests finish.
 */
class LeastRequest implements Strategy {
  readonly name = 'least-request';
  readonly #choiceCount: number;
  readonly #bias: number;
  #lastSeen: readonly Target[] | undefined;
  /** Whether the snapshot's weights are all equal, so sampling applies. */
  #equal = true;
  /** A permutation of snapshot indexes; each pick moves its sample to the front (a partial Fisher–Yates shuffle). */
  #order = new Int32Array(0);
  /** Snapshot indexes, earliest deadline first (unequal weights only). */
  #heap: IndexHeap | undefined;
  /** Per snapshot index: its next deadline on the scheduler's virtual clock. */
  #deadline = new Float64Array(0);
  /** Per snapshot index: when it was last rescheduled, so equal deadlines are served first come, first served. */
  #queuedAt = new Float64Array(0);
  #sequence = 0;

  constructor(choiceCount: number, bias: number) {
    this.#choiceCount = choiceCount;
    this.#bias = bias;
  }

  pick(targets: readonly Target[]): Target {
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    return this.#equal ? this.#sample(targets) : this.#schedule(targets);
  }

  targetStats(target: Target): StrategyTargetStats {
    return { score: this.#score(target) };
  }

  #sample(targets: readonly Target[]): Target {
    const count = targets.length;
    const order = this.#order;
    const choices = Math.min(this.#choiceCount, count);
    let best = targets[0];
    for (let i = 0; i < choices; i++) {
      const j = i + Math.floor(Math.random() * (count - i));
      const index = order[j];
      order[j] = order[i];
      order[i] = index;
      const candidate = targets[index];
      if (i === 0 || candidate.inFlight < best.inFlight) best = candidate;
    }
    return best;
  }

  #schedule(targets: readonly Target[]): Target {
    const heap = this.#heap!;
    const index = heap.top;
    const target = targets[index];
    this.#deadline[index] += this.#score(target);
    this.#queuedAt[index] = ++this.#sequence;
    heap.update(index);
    return target;
  }

  /** 1 / effective weight: how far apart its turns are. */
  #score(target: Target): number {
    return (target.inFlight + 1) ** this.#bias / target.weight;
  }

  #rebuild(targets: readonly Target[]): void {
    const count = targets.length;
    this.#lastSeen = targets;
    const weight = targets[0].weight;
    this.#equal = targets.every((target) => target.weight === weight);
    if (this.#equal) {
      this.#order = Int32Array.from({ length: count }, (_, i) => i);
      this.#heap = undefined;
      return;
    }
    this.#deadline = Float64Array.from(targets, (target) => this.#score(target));
    this.#queuedAt = Float64Array.from({ length: count }, (_, i) => i - count);
    this.#heap = new IndexHeap(count, this.#earlier);
  }

  readonly #earlier = (a: number, b: number): boolean => {
    const deadlineA = this.#deadline[a];
    const deadlineB = this.#deadline[b];
    return deadlineA < deadlineB || (deadlineA === deadlineB && this.#queuedAt[a] < this.#queuedAt[b]);
  };
}

/** Envoy-style weighted least request: P2C on requests in flight, or EDF on weight / (inFlight + 1) ^ bias. */
export function leastRequest(options?: LeastRequestOptions): Strategy {
  const o = optionsObject(options, FN, OPTIONS);
  const prefix = `${FN}: options`;
  return new LeastRequest(
    o.choiceCount === undefined ? 2 : integer(prefix, 'choiceCount', o.choiceCount, { min: 2 }),
    o.activeRequestBias === undefined ? 1 : finiteNumber(prefix, 'activeRequestBias', o.activeRequestBias),
  );
}

markFactory(leastRequest, 'leastRequest()');
