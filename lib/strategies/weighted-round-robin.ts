import type { Strategy } from '../strategy.js';
import type { Target } from '../target.js';

/**
 * Smooth weighted round robin in O(log n) per pick.
 *
 * NGINX's smooth WRR scans every peer on each pick, which is O(n): tens of microseconds per request
 * with 10,000 targets. Here each target instead owns a series of deadlines on a virtual clock and a
 * binary min-heap hands out the earliest one (earliest deadline first, as in Envoy's scheduler).
 *
 * Target i's k-th deadline is (k + 0.5) / w_i: Sainte-Laguë/Webster offsets, which centre a
 * target's picks in its share of each period instead of front-loading them. With integer weights
 * all of target i's deadlines in period p lie strictly inside (p, p + 1), and ties are broken the
 * same way every period, so the sequence repeats every W = Σ w_i picks and any W consecutive picks
 * hold exactly w_i picks of target i: NGINX's shares. Deadlines 1 / w_i apart interleave heavy and
 * light targets the way NGINX's smooth variant does; the sequences are not identical, though, and
 * where several light targets share a deadline they are served back to back, so the heavy target's
 * longest run can exceed NGINX's (weights 10, 3, 3, 1, 1: 4 in a row against NGINX's 2).
 *
 * A new snapshot restarts the clock. Ties go to snapshot position, rotated by the number of picks
 * so far, so equal-weight targets keep rotating across changes instead of restarting at the first.
 */
class WeightedRoundRobin implements Strategy {
  readonly name = 'weighted-round-robin';
  #lastSeen: readonly Target[] | undefined;
  #picks = 0;
  /** Snapshot indexes in heap order, earliest deadline first. */
  #heap = new Int32Array(0);
  /** Per snapshot index: its next deadline. */
  #deadline = new Float64Array(0);
  /** Per snapshot index: picks since the clock restarted, the k of its next deadline. */
  #served = new Float64Array(0);
  /** Per snapshot index: tie-break order among equal deadlines. */
  #rank = new Int32Array(0);

  pick(targets: readonly Target[]): Target {
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    const index = this.#heap[0];
    const served = ++this.#served[index];
    this.#deadline[index] = (served + 0.5) / targets[index].weight;
    this.#siftDown(0);
    this.#picks++;
    return targets[index];
  }

  #rebuild(targets: readonly Target[]): void {
    const count = targets.length;
    const rotation = this.#picks % count;
    this.#lastSeen = targets;
    this.#heap = new Int32Array(count);
    this.#deadline = new Float64Array(count);
    this.#served = new Float64Array(count);
    this.#rank = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      this.#heap[i] = i;
      this.#deadline[i] = 0.5 / targets[i].weight;
      this.#rank[i] = (i - rotation + count) % count;
    }
    for (let position = (count >>> 1) - 1; position >= 0; position--) this.#siftDown(position);
  }

  #siftDown(position: number): void {
    const heap = this.#heap;
    const index = heap[position];
    const half = heap.length >>> 1;
    while (position < half) {
      let child = 2 * position + 1;
      if (child + 1 < heap.length && this.#earlier(heap[child + 1], heap[child])) child++;
      if (!this.#earlier(heap[child], index)) break;
      heap[position] = heap[child];
      position = child;
    }
    heap[position] = index;
  }

  #earlier(a: number, b: number): boolean {
    const deadlineA = this.#deadline[a];
    const deadlineB = this.#deadline[b];
    return deadlineA < deadlineB || (deadlineA === deadlineB && this.#rank[a] < this.#rank[b]);
  }
}

export function weightedRoundRobin(): Strategy {
  return new WeightedRoundRobin();
}
