import type { Strategy } from './strategy.js';
import type { Target } from '../target.js';
import { markFactory } from '../validate.js';

/**
 * Weighted random choice: uniform in O(1) when every weight is equal, otherwise a binary search
 * over cumulative weights in O(log n), built once per snapshot.
 */
class WeightedRandom implements Strategy {
  readonly name = 'random';
  #lastSeen: readonly Target[] | undefined;
  /** Running sums of weights in snapshot order; undefined when weights are all equal. */
  #cumulative: Float64Array | undefined;

  pick(targets: readonly Target[]): Target {
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    const cumulative = this.#cumulative;
    if (cumulative === undefined) return targets[Math.floor(Math.random() * targets.length)];
    const point = Math.random() * cumulative[cumulative.length - 1];
    // Upper bound is the last index, so rounding that lands `point` on the total still picks a target.
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle] > point) high = middle;
      else low = middle + 1;
    }
    return targets[low];
  }

  #rebuild(targets: readonly Target[]): void {
    this.#lastSeen = targets;
    this.#cumulative = undefined;
    const first = targets[0].weight;
    if (targets.every((target) => target.weight === first)) return;
    const cumulative = new Float64Array(targets.length);
    let sum = 0;
    for (let i = 0; i < targets.length; i++) cumulative[i] = sum += targets[i].weight;
    this.#cumulative = cumulative;
  }
}

export function random(): Strategy {
  return new WeightedRandom();
}

markFactory(random, 'random()');
