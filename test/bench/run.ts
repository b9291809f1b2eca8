/**
 * `npm run bench`: every variant of `variants.ts` side by side, in one run, interleaved over
 * several rounds, with ratios to the minimal node:http proxy (and, for the per-feature variants, to
 * the plain balancer); then the strategy micro-benchmark and the 1 GiB memory checks.
 * `npm run bench -- --slow` gives the backends 5 ms of latency and uses 200 connections. Servers
 * under test run in child processes pinned to CPU 0; this process (backends and the load
 * generator) pins itself to CPU 1.
 *
 * The HTTP/2 and HTTPS/1.1 variants are loaded by h2load (autocannon has no h2): on Debian/Ubuntu
 * `apt-get install nghttp2-client`; without it they are left out. Same connections as the others,
 * one stream in flight per connection unless `--h2-streams N`.
 *
 * `npm run bench -- --soak`: instead of the rounds, loads the library with every feature on for
 * `--phases` (3) × `--phase-duration` (15) s and prints its heap after a forced GC and its RSS per
 * phase (`soak.ts`, written to bench-results-soak.json); exits non-zero unless the heap stays flat.
 *
 * Every req/s, p99 and CPU figure is the median over the rounds, with the min–max over them beside it.
 * `--instructions FILE` (a `npm run bench:instructions` JSON) adds, after the run, one table of the
 * instruction counts beside these figures for the variants both measured (`side-by-side.ts`).
 *
 * Flags: --slow, --rounds N (5), --duration S (2), --warmup S (1.5), --connections N (50; 200 with --slow), --only id,id,
 * --h2-streams N (1), --no-memory, --no-strategies, --json FILE (default bench-results.json, or bench-results-slow.json),
 * --instructions FILE, --soak, --phases N (3), --phase-duration S (15).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { startRedis, type RedisServer } from '../redis-server.js';
import { startBackends } from './backends.js';
import { canPin, hasH2load, measure, pinSelf, spawnServer, type LoadOptions, type Measurement, type ServerProcess } from './harness.js';
import { GiB, memoryBench, type MemoryRow } from './memory.js';
import { type CountedRow, sideBySide } from './side-by-side.js';
import { printSoak, soak } from './soak.js';
import { benchStrategies, type BenchRow } from './strategies.js';
import { BASELINE, PLAIN, VARIANTS, variant, type Variant } from './variants.js';

const SERVER_CPU = 0;
const LOAD_CPU = 1;
/** A sample during which other processes used more than this share of a core is measured again (up to twice)... */
const NOISE_LIMIT = 0.15;
const RETRIES = 2;
/** ...as long as the whole run is still expected to end within this many seconds. */
const TIME_BUDGET = 420;
/** Seconds the strategy and memory phases take after the rounds. */
const TAIL_SECONDS = 35;

const { values: flags } = parseArgs({
  options: {
    slow: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1.5' },
    connections: { type: 'string' },
    only: { type: 'string' },
    'no-memory': { type: 'boolean', default: false },
    'no-strategies': { type: 'boolean', default: false },
    json: { type: 'string' },
    instructions: { type: 'string' },
    'h2-streams': { type: 'string', default: '1' },
    soak: { type: 'boolean', default: false },
    phases: { type: 'string', default: '3' },
    'phase-duration': { type: 'string', default: '15' },
  },
});

const slow = flags.slow!;
const rounds = positive('rounds', flags.rounds!);
const duration = positive('duration', flags.duration!);
const warmup = Number(flags.warmup);
const connections = flags.connections === undefined ? (slow ? 200 : 50) : positive('connections', flags.connections);
const delay = slow ? 5 : 0;
const jsonPath = flags.json ?? (slow ? 'bench-results-slow.json' : 'bench-results.json');
const streams = positive('h2-streams', flags['h2-streams']!);
const only = flags.only?.split(',');
// Read before the run, so a wrong path fails at once rather than after minutes of measuring.
const counted =
  flags.instructions === undefined ? undefined : (JSON.parse(readFileSync(flags.instructions, 'utf8')) as { date: string; results: CountedRow[] });
for (const id of only ?? []) variant(id);
// The feature variants are read against the plain balancer: it runs whenever one of them does.
const wanted = (v: Variant): boolean =>
  v.id === BASELINE || only === undefined || only.includes(v.id) || (v.id === PLAIN && VARIANTS.some((f) => f.group === 'feature' && only.includes(f.id)));
const needsH2load = (v: Variant): boolean => v.load !== undefined && v.load !== 'autocannon';
// h2c variants need backends of their own: `npm run bench:instructions` has them.
const variants = VARIANTS.filter((v) => wanted(v) && (hasH2load || !needsH2load(v)) && v.h2c !== true);
const loadOf = (v: Variant): Omit<LoadOptions, 'duration'> => ({ connections, path: v.path, load: v.load, streams });

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new TypeError(`--${name} must be a positive number, got ${value}`);
  return n;
}

export interface VariantResult {
  id: string;
  label: string;
  group: Variant['group'];
  /** Medians over the rounds. */
  rps: number;
  /** Lowest and highest req/s over the rounds. */
  rpsMin: number;
  rpsMax: number;
  /** Median over the rounds of (this variant's req/s / the minimal proxy's in the same round). */
  ratio: number;
  p50: number;
  p99: number;
  /** Lowest and highest p99 over the rounds. */
  p99Min: number;
  p99Max: number;
  /** Median over the rounds of (p99 / the minimal proxy's p99 in the same round). */
  p99Ratio: number;
  mean: number;
  /** Median server CPU microseconds per request. */
  cpuPerRequest: number;
  /** Lowest and highest CPU microseconds per request over the rounds. */
  cpuMin: number;
  cpuMax: number;
  /** Median kernel (system) CPU microseconds per request, part of `cpuPerRequest`: what instruction counts do not see. */
  systemPerRequest: number;
  /** Median over the rounds of (the minimal proxy's CPU per request / this variant's): requests per core-second relative to it. */
  cpuRatio: number;
  /** As `ratio` and `cpuRatio`, relative to the plain balancer on node:http (lib-bare) instead; NaN when it did not run. */
  plainRatio: number;
  plainCpuRatio: number;
  serverCpu: number;
  loadCpu: number;
  /** Median share of a core other processes used during the samples kept. */
  noise: number;
  /** Whether the server closed client connections (its p50/p99 are then unmeasurable). */
  closesConnections: boolean;
  errors: number;
  non2xx: number;
  rounds: Measurement[];
}

const median = (values: number[]): number => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
/** Lowest and highest, NaN rounds (a p99 that closed connections make unmeasurable) left out; NaN when all are. */
const extremes = (values: number[]): [number, number] => {
  const kept = values.filter((v) => !Number.isNaN(v));
  return kept.length === 0 ? [Number.NaN, Number.NaN] : [Math.min(...kept), Math.max(...kept)];
};

const startedAt = Date.now();
const elapsed = (): string => `${((Date.now() - startedAt) / 1000).toFixed(0)} s`;
const progress = (message: string): void => void process.stderr.write(`[${elapsed().padStart(5)}] ${message}\n`);

const pinned = pinSelf(LOAD_CPU);
const cpus = os.cpus().length;
if (!pinned) progress(`taskset unavailable${canPin ? ' (pinning failed)' : ''}: running unpinned, figures include scheduler noise`);
if (cpus < 2) progress('fewer than 2 CPUs: the load generator competes with the server under test');
const serverCpu = pinned && cpus >= 2 ? SERVER_CPU : undefined;

if (flags.soak) {
  const result = await soak({
    phases: positive('phases', flags.phases!),
    phaseDuration: positive('phase-duration', flags['phase-duration']!),
    connections,
    cpu: serverCpu,
    progress,
  });
  printSoak(result);
  const path = flags.json ?? 'bench-results-soak.json';
  writeFileSync(
    path,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, pinned: serverCpu !== undefined, ...result }, null, 2)}\n`,
  );
  console.log(`\n${path} written; whole run ${elapsed()}`);
  process.exit(result.flat ? 0 : 1);
}
if (!hasH2load && VARIANTS.some((v) => wanted(v) && needsH2load(v))) {
  progress('h2load not found (apt-get install nghttp2-client): the HTTP/2 and HTTPS/1.1 variants are left out');
}

const backends = await startBackends({ delay });
// On the load generator's CPU (this process's affinity is inherited), like the backends.
const redis: RedisServer | undefined = variants.some((v) => v.redis) ? await startRedis() : undefined;
const env = redis === undefined ? undefined : { BENCH_REDIS_URL: redis.url };
progress(`${variants.length} servers starting${serverCpu === undefined ? '' : ` on CPU ${serverCpu}`}; backends and load on CPU ${pinned ? LOAD_CPU : 'any'}`);
const settled = await Promise.allSettled(variants.map((v) => spawnServer(v.id, backends.urls, { cpu: serverCpu, env })));
const servers: ServerProcess[] = [];
for (const s of settled) if (s.status === 'fulfilled') servers.push(s.value);
const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
if (failed !== undefined) {
  await Promise.all(servers.map((s) => s.close()));
  await backends.close();
  await redis?.stop();
  throw failed.reason;
}

const results = new Map<string, Measurement[]>(variants.map((v) => [v.id, []]));
let retried = 0;
try {
  if (warmup > 0) {
    progress(`warm-up: ${warmup} s per variant`);
    for (const [i, server] of servers.entries()) await measure(server, { ...loadOf(variants[i]!), duration: warmup });
  }
  const slots = rounds * servers.length;
  let done = 0;
  const roundsBegan = Date.now();
  const canRetry = (): boolean => {
    const perSample = (Date.now() - roundsBegan) / 1000 / Math.max(1, done);
    return (Date.now() - startedAt) / 1000 + (slots - done + 1) * perSample + TAIL_SECONDS < TIME_BUDGET;
  };
  for (let round = 0; round < rounds; round++) {
    // Each round starts one variant later, so none always runs first or right after the same neighbour.
    const order = servers.map((_, i) => (i + round * 5) % servers.length);
    progress(`round ${round + 1}/${rounds}: ${duration} s per variant, ${connections} connections`);
    for (const index of order) {
      const server = servers[index]!;
      const load = loadOf(variants[index]!);
      let best: Measurement | undefined;
      for (let attempt = 0; attempt <= RETRIES; attempt++) {
        await measure(server, { ...load, duration: 0.25 }); // reopen client connections and pooled upstream sockets
        const sample = await measure(server, { ...load, duration });
        if (best === undefined || !(sample.noise >= best.noise)) best = sample;
        done++;
        if (!(best.noise > NOISE_LIMIT) || !canRetry()) break;
        done--;
        retried++;
      }
      results.get(server.id)!.push(best!);
    }
  }
} finally {
  await Promise.all(servers.map((s) => s.close()));
  await backends.close();
  await redis?.stop();
}

const baseline = results.get(BASELINE)!;
const plain = results.get(PLAIN);
const table: VariantResult[] = variants.map((v) => {
  const runs = results.get(v.id)!;
  const closes = runs.some((m) => Number.isNaN(m.p99));
  const [rpsMin, rpsMax] = extremes(runs.map((m) => m.rps));
  const [p99Min, p99Max] = extremes(runs.map((m) => m.p99));
  const [cpuMin, cpuMax] = extremes(runs.map((m) => m.cpuPerRequest));
  return {
    id: v.id,
    label: v.label,
    group: v.group,
    rps: median(runs.map((m) => m.rps)),
    rpsMin,
    rpsMax,
    ratio: median(runs.map((m, i) => m.rps / baseline[i]!.rps)),
    p50: median(runs.map((m) => m.p50)),
    p99: median(runs.map((m) => m.p99)),
    p99Min,
    p99Max,
    p99Ratio: median(runs.map((m, i) => m.p99 / baseline[i]!.p99)),
    mean: median(runs.map((m) => m.mean)),
    cpuPerRequest: median(runs.map((m) => m.cpuPerRequest)),
    cpuMin,
    cpuMax,
    systemPerRequest: median(runs.map((m) => m.systemPerRequest)),
    cpuRatio: median(runs.map((m, i) => baseline[i]!.cpuPerRequest / m.cpuPerRequest)),
    plainRatio: plain === undefined ? Number.NaN : median(runs.map((m, i) => m.rps / plain[i]!.rps)),
    plainCpuRatio: plain === undefined ? Number.NaN : median(runs.map((m, i) => plain[i]!.cpuPerRequest / m.cpuPerRequest)),
    serverCpu: median(runs.map((m) => m.serverCpu)),
    loadCpu: median(runs.map((m) => m.loadCpu)),
    noise: median(runs.map((m) => m.noise)),
    closesConnections: closes,
    errors: runs.reduce((n, m) => n + m.errors + m.timeouts, 0),
    non2xx: runs.reduce((n, m) => n + m.non2xx, 0),
    rounds: runs,
  };
});

// The strategy micro-benchmark, on this CPU with the servers gone: the fastest of two passes per
// row, since a burst of other activity on a shared machine only ever makes a pass slower.
let strategies: BenchRow[] = [];
if (!flags['no-strategies']) {
  progress('strategy micro-benchmark');
  const passes = [benchStrategies(500_000), benchStrategies(500_000)];
  strategies = passes[0]!.map((row, i) => (passes[1]![i]!.nsPerPick < row.nsPerPick ? passes[1]![i]! : row));
}

let memory: MemoryRow[] = [];
if (!flags['no-memory'] && !slow) {
  progress('memory: 1 GiB response and 1 GiB upload through proxy-balancer on node:http');
  memory = await memoryBench(GiB, serverCpu);
}

// ---- report

const fmt = (n: number, digits = 0): string => (Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const mode = slow ? `slow backends (${delay} ms), ${connections} connections` : `fast backends, ${connections} connections`;
console.log(`\nproxy-balancer benchmark: ${mode}; ${rounds} rounds × ${duration} s, interleaved; medians; 1 KB bodies, 3 keep-alive backends`);
console.log(
  `server under test ${serverCpu === undefined ? 'unpinned' : `on CPU ${serverCpu}`}, autocannon + backends ${pinned ? `on CPU ${LOAD_CPU}` : 'unpinned'}; Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}\n`,
);
if (slow) {
  console.log(
    `backends answer after ${delay} ms: with ${connections} connections they cap throughput at ${Math.round((connections * 1000) / delay)} req/s; ` +
      'variants below that are limited by the proxy, the rest by the backends (lower --connections to make the backends the limit).\n',
  );
}
const range = (min: number, max: number, digits = 0): string => (Number.isNaN(min) ? '' : `${fmt(min, digits)}–${fmt(max, digits)}`);
const header = [
  'variant',
  'req/s',
  'min–max',
  '× minimal',
  '× plain',
  'p50 ms',
  'p99 ms',
  'min–max',
  'p99 ×',
  'mean ms',
  'CPU µs/req',
  'min–max',
  'sys µs',
  'CPU ×',
  'proxy CPU',
  'load CPU',
  'others',
];
const rows = table.map((r) => [
  r.label + (r.closesConnections ? ' *' : ''),
  fmt(r.rps),
  range(r.rpsMin, r.rpsMax),
  fmt(r.ratio, 2),
  r.group === 'feature' ? fmt(r.plainRatio, 2) : '',
  fmt(r.p50, 2),
  fmt(r.p99, 2),
  range(r.p99Min, r.p99Max, 2),
  fmt(r.p99Ratio, 2),
  fmt(r.mean, 2),
  fmt(r.cpuPerRequest, 1),
  range(r.cpuMin, r.cpuMax, 1),
  fmt(r.systemPerRequest, 1),
  fmt(r.cpuRatio, 2),
  `${fmt(r.serverCpu * 100)}%`,
  `${fmt(r.loadCpu * 100)}%`,
  `${fmt(r.noise * 100)}%`,
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of rows) console.log(line(row));
console.log(`\nmin–max: the lowest and highest of the ${rounds} rounds, beside each median; two variants differ only beyond both ranges.`);
console.log('sys µs: the kernel share of CPU µs/req (system calls, socket I/O), which instruction counts (bench:instructions) do not see.');
console.log("× minimal: req/s over the minimal proxy's in the same round; × plain: over the plain balancer's (proxy-balancer on");
console.log("node:http, lib-bare) in the same round, for the variants that add a feature to it. CPU ×: the minimal proxy's CPU time per request over");
console.log("this variant's (requests per core-second relative to it; unaffected by other load on the machine, and the");
console.log('better figure when the server did not saturate its core, e.g. from-memory variants limited by the load generator).');
console.log('proxy CPU / load CPU / others: share of one core used by the server under test / by autocannon + backends /');
console.log(`by other processes on the machine (samples with others > ${NOISE_LIMIT * 100}% were measured again, ${retried} times in all).`);
const noisy = table.filter((r) => r.noise > NOISE_LIMIT);
if (noisy.length > 0) {
  console.log(`! other processes kept competing for the CPUs during ${noisy.length} variant(s): their figures are suspect; run again on a quieter machine.`);
}
if (table.some((r) => r.closesConnections)) {
  console.log('\n* closes every client connection (its default settings send `Connection: close`): autocannon pairs responses');
  console.log('  with the wrong requests on reconnects, so p50/p99 are not measurable; mean = connections / throughput.');
}
const bad = table.filter((r) => r.errors > 0 || r.non2xx > 0);
for (const r of bad) console.log(`! ${r.label}: ${r.errors} errors/timeouts, ${r.non2xx} non-2xx responses`);

const find = (id: string): VariantResult | undefined => table.find((r) => r.id === id);
const ratioOf = (id: string, key: 'ratio' | 'cpuRatio'): number => find(id)?.[key] ?? Number.NaN;
type Op = '≥' | '>' | '≤';
/** The targets of issue 15: pairs compared by req/s (and by CPU per request), the p99 ratio, and each feature's cost. */
const pairs: [string, string, string, number, Op][] = [
  ['library in Express vs plain http-proxy in Express', 'lib-express', 'http-proxy-express', 1, '≥'],
  ['library in Express vs http-proxy-middleware in Express', 'lib-express', 'hpm-express', 2, '≥'],
  ['library on node:http vs minimal proxy', 'lib-bare', BASELINE, 0.88, '≥'],
  ['library on node:http vs fastify + @fastify/http-proxy', 'lib-bare', 'fastify', 1, '>'],
  ['library p99 vs minimal proxy p99', 'lib-bare', BASELINE, 1.2, '≤'],
  ['cache hits on node:http vs node:http from memory', 'lib-bare-cache', 'node-memory', 0.9, '≥'],
];
const targets = [
  ...pairs.map(([name, id, versus, goal, op]) => ({
    name,
    goal,
    op,
    value: op === '≤' ? (find(id)?.p99Ratio ?? Number.NaN) : ratioOf(id, 'ratio') / ratioOf(versus, 'ratio'),
    cpuValue: op === '≤' ? Number.NaN : ratioOf(id, 'cpuRatio') / ratioOf(versus, 'cpuRatio'),
  })),
  // "≤ 10% cost": the plain balancer's figures at least 0.9× in the same rounds.
  ...table
    .filter((r) => r.group === 'feature')
    .map((r) => ({
      name: `cost of ${r.label.replace(/^\+ /, '').replace(/, node:http$/, '')}`,
      goal: 0.9,
      op: '≥' as Op,
      value: r.plainRatio,
      cpuValue: r.plainCpuRatio,
    })),
];
const verdict = (value: number, goal: number, op: Op): string =>
  Number.isNaN(value) ? '' : (op === '≥' ? value >= goal : op === '>' ? value > goal : value <= goal) ? 'met' : 'NOT MET';
const judged = targets.filter(({ value, cpuValue }) => !Number.isNaN(value) || !Number.isNaN(cpuValue));
if (judged.length > 0) console.log('\ntargets of issue 15                                         by req/s           by CPU per request');
for (const { name, value, cpuValue, goal, op } of judged) {
  console.log(
    `  ${name.slice(0, 56).padEnd(56)} ${fmt(value, 2).padStart(5)} ${verdict(value, goal, op).padEnd(8)}  ${Number.isNaN(cpuValue) ? '           ' : `${fmt(cpuValue, 2).padStart(5)} ${verdict(cpuValue, goal, op).padEnd(8)}`}  (target ${op} ${goal}${name.startsWith('cost of') ? '× plain' : ''})`,
  );
}

const h2 = find('lib-h2');
const h1 = find('lib-https1');
if (h2 !== undefined && h1 !== undefined) {
  const h2Runs = results.get('lib-h2')!;
  const h1Runs = results.get('lib-https1')!;
  const perRound = median(h2Runs.map((m, i) => m.rps / h1Runs[i]!.rps));
  const cpu = median(h2Runs.map((m, i) => h1Runs[i]!.cpuPerRequest / m.cpuPerRequest));
  console.log(
    `\nHTTP/2 vs HTTPS/1.1 (h2load, ${connections} connections, ${streams} stream${streams === 1 ? '' : 's'} each on h2): ` +
      `h2 ${fmt(h2.rps)} req/s, p99 ${fmt(h2.p99, 2)} ms; HTTP/1.1 ${fmt(h1.rps)} req/s, p99 ${fmt(h1.p99, 2)} ms; ` +
      `h2 × HTTP/1.1 ${fmt(perRound, 2)} by req/s, ${fmt(cpu, 2)} by CPU per request`,
  );
}

const tiered = find('lib-bare-cache-tiered');
if (tiered !== undefined) {
  const versus = (id: string): string =>
    `${fmt(tiered.ratio / ratioOf(id, 'ratio'), 2)}× by req/s, ${fmt(tiered.cpuRatio / ratioOf(id, 'cpuRatio'), 2)}× by CPU`;
  console.log(`\ntieredStore hits vs redisStore-only hits: ${versus('lib-bare-cache-redis')}; vs memory-only hits: ${versus('lib-bare-cache')}`);
}

if (strategies.length > 0) {
  console.log('\nstrategy picks (pick + onStart + onEnd), fastest of two passes of 500,000 picks (test/bench/strategies.ts)');
  console.log('  strategy               targets    ns/pick   < 1 µs');
  for (const row of strategies) {
    console.log(
      `  ${row.strategy.padEnd(22)} ${String(row.targets).padStart(7)} ${row.nsPerPick.toFixed(1).padStart(10)}   ${row.underMicrosecond ? 'yes' : 'NO'}`,
    );
  }
}

if (memory.length > 0) {
  const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
  console.log('\nmemory: proxy-balancer on node:http, RSS of the proxy process (target: growth < 50 MB)');
  for (const row of memory) {
    console.log(
      `  1 GiB ${row.direction.padEnd(8)}  RSS before ${mb(row.rssBefore).padStart(6)} MB  peak ${mb(row.rssPeak).padStart(6)} MB  growth ${mb(row.growth).padStart(5)} MB  ${row.growth < 50 * 2 ** 20 ? 'ok' : 'OVER'}  (${row.mbPerSecond.toFixed(0)} MB/s)`,
    );
  }
}

if (counted !== undefined) {
  console.log(`\nside by side with ${flags.instructions} (${counted.date}):`);
  for (const l of sideBySide(table, counted.results)) console.log(`  ${l}`);
}

writeFileSync(
  jsonPath,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model,
      cpus,
      pinned: serverCpu !== undefined,
      mode: slow ? 'slow' : 'fast',
      backendDelayMs: delay,
      connections,
      h2Streams: streams,
      rounds,
      durationSeconds: duration,
      noiseLimit: NOISE_LIMIT,
      retried,
      results: table,
      targets,
      strategies,
      memory,
      seconds: (Date.now() - startedAt) / 1000,
    },
    null,
    2,
  )}\n`,
);
console.log(`\n${jsonPath} written; whole run ${elapsed()}`);
