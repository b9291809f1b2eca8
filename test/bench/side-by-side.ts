/**
 * One table of the two kinds of figures for the variants both runs measured: instructions per
 * request (`npm run bench:instructions`, its JSON) beside CPU time per request, req/s and p99
 * (`npm run bench`, its JSON or the run just made), each with its spread over reps or rounds, and
 * every cost relative to the minimal proxy's in the same run. `npm run bench -- --instructions FILE`
 * prints it after the run; `npm run bench:side-by-side` from two JSON files already written:
 *
 *   npm run bench:side-by-side -- [--rps bench-results.json] [--instructions bench-results-instructions.json]
 *
 * Valgrind counts user-space instructions only, so the CPU time is split: `sys µs` is the kernel's
 * share per request (system calls, socket I/O), `user ×` the user-space CPU cost ratio, and
 * `user ÷ instr` that over the instruction ratio: above 1 the variant spends more user time per
 * instruction than the minimal proxy (cache and branch misses, a busier allocator), below 1 less.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The fields of one `npm run bench` result (`VariantResult` of run.ts) used here. */
export interface TimedRow {
  id: string;
  label: string;
  /** `systemPerRequest` is missing from results written before it was recorded. */
  rounds: { rps: number; p99: number; cpuPerRequest: number; systemPerRequest?: number }[];
}

/** The fields of one `npm run bench:instructions` result used here. */
export interface CountedRow {
  label: string;
  variant: string;
  median: number;
  min: number;
  max: number;
  noJit: { median: number; min: number; max: number };
}

const BASELINE = 'minimal';

const median = (values: number[]): number => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Spread {
  median: number;
  min: number;
  max: number;
}
const spread = (values: number[]): Spread => {
  const kept = values.filter((v) => !Number.isNaN(v));
  return kept.length === 0
    ? { median: Number.NaN, min: Number.NaN, max: Number.NaN }
    : { median: median(kept), min: Math.min(...kept), max: Math.max(...kept) };
};

const fmt = (n: number, digits = 0): string =>
  Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ranged = (s: Spread, digits = 0, scale = 1): string =>
  Number.isNaN(s.median) ? 'n/a' : `${fmt(s.median / scale, digits)} (${fmt(s.min / scale, digits)}–${fmt(s.max / scale, digits)})`;

/** The merged table's lines: one row per variant in both (one per revision when the instruction run compared revisions). */
export function sideBySide(timed: readonly TimedRow[], counted: readonly CountedRow[]): string[] {
  const timedBase = timed.find((t) => t.id === BASELINE);
  const countedBase = counted.find((c) => c.variant === BASELINE);
  // Cost ratios per round (this variant's over the minimal proxy's in the same round), then their median.
  const perRound = (t: TimedRow, of: (round: TimedRow['rounds'][number], base: TimedRow['rounds'][number]) => number): number =>
    timedBase === undefined ? Number.NaN : median(t.rounds.map((r, i) => of(r, timedBase.rounds[i]!)));
  const header = [
    'variant',
    'instr/req, k (min–max)',
    'instr ×',
    'w/o JIT ×',
    'CPU µs/req (min–max)',
    'sys µs',
    'CPU ×',
    'user ×',
    'user ÷ instr',
    'req/s (min–max)',
    'time ×',
    'p99 ms (min–max)',
    'p99 ×',
  ];
  const rows: string[][] = [];
  for (const c of counted) {
    const t = timed.find((row) => row.id === c.variant);
    if (t === undefined) continue;
    const instrRatio = countedBase === undefined ? Number.NaN : c.median / countedBase.median;
    const noJitRatio = countedBase === undefined ? Number.NaN : c.noJit.median / countedBase.noJit.median;
    const cpuRatio = perRound(t, (r, b) => r.cpuPerRequest / b.cpuPerRequest);
    const user = (r: TimedRow['rounds'][number]): number => r.cpuPerRequest - (r.systemPerRequest ?? Number.NaN);
    const userRatio = perRound(t, (r, b) => user(r) / user(b));
    rows.push([
      c.label,
      ranged(c, 0, 1000),
      fmt(instrRatio, 2),
      fmt(noJitRatio, 2),
      ranged(spread(t.rounds.map((r) => r.cpuPerRequest)), 1),
      fmt(median(t.rounds.map((r) => r.systemPerRequest ?? Number.NaN)), 1),
      fmt(cpuRatio, 2),
      fmt(userRatio, 2),
      fmt(userRatio / instrRatio, 2),
      ranged(spread(t.rounds.map((r) => r.rps))),
      fmt(
        perRound(t, (r, b) => b.rps / r.rps),
        2,
      ),
      ranged(spread(t.rounds.map((r) => r.p99)), 2),
      fmt(
        perRound(t, (r, b) => r.p99 / b.p99),
        2,
      ),
    ]);
  }
  if (rows.length === 0) return ['side by side: no variant is in both the instruction counts and the timed run'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `instructions (valgrind, median of its reps) beside time (npm run bench, median of its rounds); every × is a cost over the ${BASELINE} proxy's in the same run`,
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    'instr ×, w/o JIT ×: instructions per request (w/o JIT: without V8 compiling); sys µs: kernel CPU per request (system calls, socket I/O:',
    'no instruction count sees it); CPU ×, user ×: server CPU time per request, all of it / user space only; time ×: 1 / req/s; p99 ×: p99',
    'latency; all over the minimal proxy. user ÷ instr above 1: more user time per instruction than the minimal proxy (cache misses);',
    'a ratio differs from another only beyond both rows’ spreads. Instruction rows are at their own commits (label@rev); the timed run is this checkout.',
    ...(countedBase === undefined ? ['(the instruction run has no minimal row: instr × and CPU ÷ instr are n/a)'] : []),
  ];
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      rps: { type: 'string', default: 'bench-results.json' },
      instructions: { type: 'string', default: 'bench-results-instructions.json' },
    },
  });
  const timed = readJson<{ date: string; results: TimedRow[] }>(values.rps!);
  const counted = readJson<{ date: string; results: CountedRow[] }>(values.instructions!);
  console.log(`${values.instructions} (${counted.date}) beside ${values.rps} (${timed.date})\n`);
  for (const l of sideBySide(timed.results, counted.results)) console.log(l);
}
