import type { Labels } from './exposition.js';
import { def, type FamilyDef } from './family.js';
import type { BalancerStats } from './stats.js';

/** The families of adaptive concurrency and load shedding. */
export const OVERLOAD_FAMILIES = {
  concurrencyLimit: def(
    'concurrency_limit',
    'gauge',
    "A target's adaptive concurrency limit: requests it may have in flight now (adaptiveConcurrency).",
    'average',
  ),
  concurrencyMinRtt: def(
    'concurrency_min_rtt_seconds',
    'gauge',
    "A target's latency at low concurrency (minRTT) the adaptive concurrency limit compares with, in seconds.",
    'average',
  ),
  concurrencySampleRtt: def(
    'concurrency_sample_rtt_seconds',
    'gauge',
    "A target's latency percentile over the last adaptive concurrency window (sampleRTT), in seconds.",
    'average',
  ),
  concurrencyMeasuring: def('concurrency_min_rtt_measuring', 'gauge', "1 while a target's minRTT is measured and its limit pinned to minConcurrency.", 'max'),
  concurrencyBlocked: def(
    'concurrency_blocked_total',
    'counter',
    'Requests chosen for a target that found it at its adaptive concurrency limit (sent to another target, or refused).',
  ),
  concurrencyRefused: def('concurrency_refused_total', 'counter', 'Requests answered 503 because every ready target was at its adaptive concurrency limit.'),
  eventLoopDelay: def(
    'event_loop_delay_seconds',
    'gauge',
    "This process's mean event-loop delay over the last sample interval, in seconds (loadShedding).",
    'max',
  ),
  eventLoopUtilization: def('event_loop_utilization', 'gauge', "Share of the last sample interval this process's event loop was busy, 0 to 1.", 'max'),
  heapUsed: def('heap_used_bytes', 'gauge', "This process's V8 heap in use, in bytes.", 'max'),
  rss: def('rss_bytes', 'gauge', "This process's resident set size, in bytes.", 'max'),
  shedding: def('load_shedding', 'gauge', 'Share of new requests shed now because the process is over a loadShedding limit, 0 to 1.', 'max'),
  shed: def('shed_total', 'counter', 'Requests and WebSocket handshakes answered 503 by load shedding.'),
} as const;

const F = OVERLOAD_FAMILIES;

/** Appends the overload families that apply. */
export function overloadDefinitions(defs: FamilyDef[], concurrency: boolean, process: boolean): void {
  if (concurrency)
    defs.push(F.concurrencyLimit, F.concurrencyMinRtt, F.concurrencySampleRtt, F.concurrencyMeasuring, F.concurrencyBlocked, F.concurrencyRefused);
  if (process) defs.push(F.eventLoopDelay, F.eventLoopUtilization, F.heapUsed, F.rss, F.shedding, F.shed);
}

/** Adds the overload samples of `stats`; `base` are the balancer's own labels. */
export function addOverload(stats: BalancerStats, add: (d: FamilyDef, value: number, labels?: Labels) => void, base: Labels, concurrency: boolean): void {
  if (concurrency) add(F.concurrencyRefused, stats.concurrencyRefused);
  for (const t of stats.targets) {
    const c = t.concurrency;
    if (c === undefined) continue;
    const labels = { ...base, target: t.url };
    add(F.concurrencyLimit, c.limit, labels);
    add(F.concurrencyMinRtt, c.minRtt / 1000, labels);
    add(F.concurrencySampleRtt, c.sampleRtt / 1000, labels);
    add(F.concurrencyMeasuring, c.measuringMinRtt ? 1 : 0, labels);
    add(F.concurrencyBlocked, c.blocked, labels);
  }
  const p = stats.process;
  if (p !== undefined) {
    add(F.eventLoopDelay, p.eventLoopDelay / 1000);
    add(F.eventLoopUtilization, p.eventLoopUtilization);
    add(F.heapUsed, p.heapUsedBytes);
    add(F.rss, p.rssBytes);
    add(F.shedding, p.shedding);
    add(F.shed, p.shed);
  }
}
