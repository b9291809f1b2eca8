import { type IntervalHistogram, monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';

/** The health of this process over the last sample interval. */
export interface ProcessLoad {
  /** Mean event-loop delay, ms, less the histogram's 10 ms resolution (as @fastify/under-pressure reads it). */
  eventLoopDelay: number;
  /** Share of the interval the event loop was busy, 0–1 (`performance.eventLoopUtilization()`). */
  eventLoopUtilization: number;
  /** V8 heap in use, bytes. */
  heapUsedBytes: number;
  /** Resident set size, bytes. */
  rssBytes: number;
}

/** Hears each new reading. */
export interface LoadListener {
  readonly sampleInterval: number;
  update(load: ProcessLoad): void;
}

/** The histogram's timer period, ms: the floor under every delay it records. */
const RESOLUTION = 10;

/**
 * One monitor for the whole process, however many balancers shed load: one event-loop-delay
 * histogram and one unref'd interval (at the shortest `sampleInterval` asked for), started by the
 * first listener and stopped with the last. Requests only read the figures it leaves.
 */
class ProcessMonitor {
  readonly #listeners = new Set<LoadListener>();
  #histogram: IntervalHistogram | undefined;
  #elu: EventLoopUtilization | undefined;
  #timer: NodeJS.Timeout | undefined;
  #interval = 0;
  readonly load: ProcessLoad = { eventLoopDelay: 0, eventLoopUtilization: 0, heapUsedBytes: 0, rssBytes: 0 };

  add(listener: LoadListener): void {
    this.#listeners.add(listener);
    if (this.#histogram === undefined) {
      this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION });
      this.#histogram.enable();
      this.#elu = performance.eventLoopUtilization();
    }
    this.#schedule();
  }

  delete(listener: LoadListener): void {
    if (!this.#listeners.delete(listener)) return;
    if (this.#listeners.size > 0) {
      this.#schedule();
      return;
    }
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#interval = 0;
    this.#histogram?.disable();
    this.#histogram = this.#elu = undefined;
  }

  #schedule(): void {
    let interval = Number.POSITIVE_INFINITY;
    for (const listener of this.#listeners) if (listener.sampleInterval < interval) interval = listener.sampleInterval;
    if (interval === this.#interval) return;
    clearInterval(this.#timer);
    this.#interval = interval;
    this.#timer = setInterval(sample, interval);
    this.#timer.unref();
  }

  /** @internal */
  sample(): void {
    const histogram = this.#histogram!;
    const load = this.load;
    // No sample: the loop was blocked for the whole interval, the delay is at least that long.
    load.eventLoopDelay = histogram.count === 0 ? this.#interval : Math.max(0, histogram.mean / 1e6 - RESOLUTION);
    histogram.reset();
    const now = performance.eventLoopUtilization();
    load.eventLoopUtilization = performance.eventLoopUtilization(now, this.#elu).utilization;
    this.#elu = now;
    const memory = process.memoryUsage();
    load.heapUsedBytes = memory.heapUsed;
    load.rssBytes = memory.rss;
    for (const listener of this.#listeners) listener.update(load);
  }
}

export const processMonitor = new ProcessMonitor();

function sample(): void {
  processMonitor.sample();
}
