/**
 * A user-written strategy: "least latency". It sends each request to the target with the lowest
 * cost = (latency EWMA + 1 ms) × (requests in flight + 1), learning latencies from `onEnd`.
 *
 * Multiplying by the in-flight count keeps the fastest target from taking *every* request under
 * concurrency (a strict minimum would herd them all onto it); the 1 ms floor makes that hold for a
 * target with no sample yet too. Failures and 5xx answers count as slow samples, so a target that
 * fails fast does not attract traffic.
 *
 * Cost per request: `pick` reads the top of a binary min-heap, O(1); `onStart` and `onEnd` move
 * one entry, O(log n). The heap is rebuilt, O(n), only when the pool publishes a new ready
 * snapshot (`targets !== this.#lastSeen`), as the Strategy contract suggests.
 *
 *   npx tsx examples/custom-strategy.ts    # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import { loadBalance, type Outcome, type Strategy, type Target } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, printStats, startBackends } from './backends.js';

class LeastLatency implements Strategy {
  readonly name = 'least-latency';
  /** Weight of a new sample in the moving average. */
  readonly #alpha: number;
  /** Sample recorded for a failed exchange or a 5xx answer, in ms. */
  readonly #penaltyMs: number;
  /** Latency EWMA per target, ms; kept across snapshots (Target objects live as long as their membership). */
  readonly #latency = new WeakMap<Target, number>();

  #lastSeen: readonly Target[] | undefined;
  /** Snapshot index per target of the current snapshot. */
  #indexOf = new Map<Target, number>();
  /** Snapshot indexes in heap order, cheapest first. */
  #heap: number[] = [];
  /** Per snapshot index: its position in #heap. */
  #position: number[] = [];
  /** Per snapshot index: its cost when last repositioned. */
  #cost: number[] = [];

  constructor(options: { alpha?: number; penaltyMs?: number } = {}) {
    this.#alpha = options.alpha ?? 0.3;
    this.#penaltyMs = options.penaltyMs ?? 1000;
  }

  pick(targets: readonly Target[]): Target {
    if (targets !== this.#lastSeen) this.#rebuild(targets);
    return targets[this.#heap[0]];
  }

  onStart(target: Target): void {
    this.#reposition(target); // target.inFlight was just incremented
  }

  onEnd(target: Target, outcome: Outcome): void {
    const failed = outcome.error !== undefined || outcome.status === 0 || outcome.status >= 500;
    const sample = failed ? Math.max(this.#penaltyMs, outcome.latency || 0) : outcome.latency;
    const previous = this.#latency.get(target);
    this.#latency.set(target, previous === undefined ? sample : previous + this.#alpha * (sample - previous));
    this.#reposition(target); // target.inFlight was just decremented
  }

  #costOf(target: Target): number {
    return ((this.#latency.get(target) ?? 0) + 1) * (target.inFlight + 1);
  }

  #rebuild(targets: readonly Target[]): void {
    this.#lastSeen = targets;
    this.#indexOf = new Map(targets.map((t, i) => [t, i]));
    this.#heap = targets.map((_, i) => i);
    this.#position = targets.map((_, i) => i);
    this.#cost = targets.map((t) => this.#costOf(t));
    for (let p = (targets.length >>> 1) - 1; p >= 0; p--) this.#siftDown(p);
  }

  #reposition(target: Target): void {
    const index = this.#indexOf.get(target);
    if (index === undefined) return; // not in the current snapshot; the next rebuild reads it afresh
    this.#cost[index] = this.#costOf(target);
    const position = this.#position[index];
    this.#siftUp(position);
    if (this.#position[index] === position) this.#siftDown(position);
  }

  #siftUp(position: number): void {
    const heap = this.#heap;
    const index = heap[position];
    while (position > 0) {
      const parent = (position - 1) >>> 1;
      if (this.#cost[heap[parent]] <= this.#cost[index]) break;
      this.#place(heap[parent], position);
      position = parent;
    }
    this.#place(index, position);
  }

  #siftDown(position: number): void {
    const heap = this.#heap;
    const index = heap[position];
    for (;;) {
      let child = 2 * position + 1;
      if (child >= heap.length) break;
      if (child + 1 < heap.length && this.#cost[heap[child + 1]] < this.#cost[heap[child]]) child++;
      if (this.#cost[heap[child]] >= this.#cost[index]) break;
      this.#place(heap[child], position);
      position = child;
    }
    this.#place(index, position);
  }

  #place(index: number, position: number): void {
    this.#heap[position] = index;
    this.#position[index] = position;
  }
}

// Three backends answering in about 10, 40 and 120 ms.
const demo = await startBackends(3, { names: ['fast', 'medium', 'slow'], delayMs: [10, 40, 120] });
const lb = loadBalance({ targets: demo.urls, strategy: new LeastLatency() });

const server = http.createServer(lb);
const port = await listen(server, envPort('PORT', 8080));
console.log(`front on http://127.0.0.1:${port}, strategy ${lb.strategy.name}`);

console.log('\n100 requests, 4 concurrent:');
printDistribution(await burst(`http://127.0.0.1:${port}/report`, 100, 4), ['fast', 'medium', 'slow']);
printStats(lb.stats());

console.log(`\nTry:\n  curl -i http://localhost:${port}/anything\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
