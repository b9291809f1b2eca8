import type { IncomingMessage } from 'node:http';
import { pathToFileURL } from 'node:url';
import {
  consistentHash,
  ipHash,
  leastConnections,
  leastRequest,
  peakEwma,
  powerOfTwoChoices,
  random,
  roundRobin,
  weightedRoundRobin,
} from '../../lib/strategies/index.js';
import type { Outcome, Strategy } from '../../lib/strategies/strategy.js';
import { Target } from '../../lib/target.js';

export interface BenchRow {
  strategy: string;
  targets: number;
  /** Mean cost of one pick plus its onStart and onEnd, in nanoseconds. */
  nsPerPick: number;
  underMicrosecond: boolean;
}

const SIZES = [10, 1_000, 10_000];
/** Requests held open at once, so load-aware strategies see counters move. */
const HELD = 64;
const OUTCOME: Outcome = { status: 200, latency: 1, error: undefined };
const STRATEGIES: ReadonlyArray<() => Strategy> = [
  roundRobin,
  weightedRoundRobin,
  leastConnections,
  random,
  powerOfTwoChoices,
  () => leastRequest(),
  () => peakEwma(),
  () => consistentHash({ key: 'path' }),
  () => ipHash(),
];
/** Distinct paths and client addresses for the hashing strategies; a power of two for cheap cycling. */
const REQUESTS = Array.from(
  { length: 1024 },
  (_, i) => ({ url: `/items/${i}?v=1`, headers: {}, socket: { remoteAddress: `10.0.${i >> 8}.${i & 255}` } }) as unknown as IncomingMessage,
);

/** Times every built-in strategy at every size; weights vary (1 to 4) so weighted paths are exercised. */
export function benchStrategies(picks: number): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const size of SIZES) {
    const targets = Object.freeze(Array.from({ length: size }, (_, i) => new Target(new URL(`http://10.1.${i >> 8}.${i & 255}:8080`), 1 + (i % 4))));
    for (const create of STRATEGIES) {
      const strategy = create();
      // Warm-up also pays for lazy builds (heaps, hash rings), which happen once per snapshot.
      dispatch(strategy, targets, Math.max(1_000, picks / 10));
      const began = process.hrtime.bigint();
      dispatch(strategy, targets, picks);
      const nsPerPick = Number(process.hrtime.bigint() - began) / picks;
      rows.push({ strategy: strategy.name, targets: size, nsPerPick, underMicrosecond: nsPerPick < 1_000 });
    }
  }
  return rows;
}

/** Picks like the balancer does: count in, onStart, and later count out, onEnd. */
function dispatch(strategy: Strategy, targets: readonly Target[], picks: number): void {
  const held: Target[] = [];
  for (let i = 0; i < picks; i++) {
    const req = REQUESTS[i & (REQUESTS.length - 1)];
    const target = strategy.pick(targets, req)!;
    target.inFlight++;
    strategy.onStart?.(target, req);
    const slot = i % HELD;
    if (slot < held.length) release(strategy, held[slot]);
    held[slot] = target;
  }
  for (const target of held) release(strategy, target);
}

function release(strategy: Strategy, target: Target): void {
  target.inFlight--;
  strategy.onEnd?.(target, OUTCOME);
}

function printTable(rows: readonly BenchRow[]): void {
  console.log('strategy               targets    ns/pick   < 1 µs');
  for (const row of rows) {
    console.log(
      `${row.strategy.padEnd(22)} ${String(row.targets).padStart(7)} ${row.nsPerPick.toFixed(1).padStart(10)}   ${row.underMicrosecond ? 'yes' : 'NO'}`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) printTable(benchStrategies(1_000_000));
