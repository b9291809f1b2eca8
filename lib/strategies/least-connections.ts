import type { Strategy } from '../strategy.js';
import type { Target } from '../target.js';

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
  /** Snapshot indexes in heap order, least loaded first. */
  #heap = new Int32Array(0);
  /** Per snapshot index: where it sits in `#heap`. */
  #position = new Int32Array(0);
  /** Per snapshot index: inFlight / weight when last repositioned, so the heap stays consistent. */
  #load = new Float64Array(0);
  /** Per snapshot index: sequence number of its latest start; 0 if never started. */
  #lastStart = new Float64Array(0);

  pick(targets: readonly Target[]): Target {
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    return targets[this.#heap[0]];
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
    this.#heap = new Int32Array(count);
    this.#position = new Int32Array(count);
    this.#load = new Float64Array(count);
    this.#lastStart = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const target = targets[i];
      const before = previous.get(target);
      this.#indexOf.set(target, i);
      this.#heap[i] = i;
      this.#position[i] = i;
      this.#load[i] = target.inFlight / target.weight;
      // Carried over so the tie rotation continues across snapshot changes.
      this.#lastStart[i] = before === undefined ? 0 : previousStart[before];
    }
    for (let position = (count >>> 1) - 1; position >= 0; position--) this.#siftDown(position);
  }

  #reposition(index: number, target: Target): void {
    this.#load[index] = target.inFlight / target.weight;
    const position = this.#position[index];
    if (this.#siftUp(position) === position) this.#siftDown(position);
  }

  /** Returns where the entry ended up. */
  #siftUp(position: number): number {
    const heap = this.#heap;
    const index = heap[position];
    while (position > 0) {
      const parent = (position - 1) >>> 1;
      if (!this.#before(index, heap[parent])) break;
      this.#place(heap[parent], position);
      position = parent;
    }
    this.#place(index, position);
    return position;
  }

  #siftDown(position: number): void {
    const heap = this.#heap;
    const index = heap[position];
    const half = heap.length >>> 1;
    while (position < half) {
      let child = 2 * position + 1;
      if (child + 1 < heap.length && this.#before(heap[child + 1], heap[child])) child++;
      if (!this.#before(heap[child], index)) break;
      this.#place(heap[child], position);
      position = child;
    }
    this.#place(index, position);
  }

  #place(index: number, position: number): void {
    this.#heap[position] = index;
    this.#position[index] = position;
  }

  #before(a: number, b: number): boolean {
    const loadA = this.#load[a];
    const loadB = this.#load[b];
    if (loadA !== loadB) return loadA < loadB;
    const startA = this.#lastStart[a];
    const startB = this.#lastStart[b];
    return startA !== startB ? startA < startB : a < b;
  }
}

export function leastConnections(): Strategy {
  return new LeastConnections();
}
