import type { Strategy } from './strategy.js';
import type { Target } from '../target.js';
import { IndexHeap } from './index-heap.js';
import { markFactory } from '../validate.js';

/**
 * The target with the fewest requests in flight per unit of weight, in O(log n): an indexed binary
 * min-heap keyed by (inFlight / weight, last pick) is repositioned on every start and end, so `pick`
 * only reads the top.
 *
 * Among equally loaded targets the least recently started wins, so with short requests (where
 * every target is usually at zero) traffic rotates instead of always landing on the first one.
 * Starts and ends of targets no longer in the snapshot are ignored; the next snapshot's heap is
 * built from their live counters anyway.
 */
class LeastConnections implements Strategy {
  readonly name = 'least-connections';
  #lastSeen: readonly Target[] | undefined;
  #sequence = 0;
  /** Snapshot index of each target in the current heap. */
  #indexOf = new Map<Target, number>();
  /** Snapshot indexes, least loaded first. */
  #heap: IndexHeap | undefined;
  /** Per snapshot index: inFlight / weight when last repositioned, so the heap stays consistent. */
  #load = new Float64Array(0);
  /** Per snapshot index: sequence number of its latest start; 0 if never started. */
  #lastStart = new Float64Array(0);

  pick(targets: readonly Target[]): Target {
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    return targets[this.#heap!.top];
  }

  onStart(target: Target): void {
    const index = this.#indexOf.get(target);
    if (index === undefined) return;
    this.#lastStart[index] = ++this.#sequence;
    this.#reposition(index, target);
  }

  onEnd(target: Target): void {
    const index = this.#indexOf.get(target);
    if (index !== undefined) this.#reposition(index, target);
  }

  #rebuild(targets: readonly Target[]): void {
    const count = targets.length;
    const previous = this.#indexOf;
    const previousStart = this.#lastStart;
    this.#lastSeen = targets;
    this.#indexOf = new Map();
    this.#load = new Float64Array(count);
    this.#lastStart = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const target = targets[i];
      const before = previous.get(target);
      this.#indexOf.set(target, i);
      this.#load[i] = target.inFlight / target.weight;
      // Carried over so the tie rotation continues across snapshot changes.
      this.#lastStart[i] = before === undefined ? 0 : previousStart[before];
    }
    this.#heap = new IndexHeap(count, this.#before);
  }

  #reposition(index: number, target: Target): void {
    this.#load[index] = target.inFlight / target.weight;
    this.#heap!.update(index);
  }

  readonly #before = (a: number, b: number): boolean => {
    const loadA = this.#load[a];
    const loadB = this.#load[b];
    if (loadA !== loadB) return loadA < loadB;
    const startA = this.#lastStart[a];
    const startB = this.#lastStart[b];
    return startA !== startB ? startA < startB : a < b;
  };
}

export function leastConnections(): Strategy {
  return new LeastConnections();
}

markFactory(leastConnections, 'leastConnections()');
