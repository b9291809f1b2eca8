/**
 * `npm run bench:memory`: memory per idle keep-alive client connection, per in-flight request
 * and per idle pooled upstream socket of each server variant (`connection-memory.ts` says how each
 * is read), per 1,000 of them, for N = 1,000 and 5,000 connections. Reps interleave the
 * variants; each figure is the median over the reps with their min–max.
 *
 * Heap figures hardly move with the machine's load (they count objects, not time); RSS figures do
 * move by a few hundred kB a reading, as V8 and malloc keep or return pages: read them at N = 5,000.
 *
 * Both this process (N client sockets + N backend sockets) and the server (N client + N upstream
 * sockets) need 2N file descriptors and some: when the soft limit is lower and the hard one allows,
 * the run restarts itself under `ulimit -n <hard>`.
 *
 * Usage: npm run bench:memory -- [variant ...] [--connections 1000,5000] [--reps 3] [--base http-proxy-bare]
 *   [--json bench-results-memory.json] [--from FILE (prints the tables of an earlier run's JSON instead of measuring)]
 * Default variants: minimal http-proxy-bare lib-bare (any plain HTTP/1.1 variant of variants.ts works).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { connectionMemory, startHoldBackends, type ConnectionMemory, type PerConnection } from './connection-memory.js';
import { variant } from './variants.js';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '1000,5000' },
    reps: { type: 'string', default: '3' },
    base: { type: 'string', default: 'http-proxy-bare' },
    json: { type: 'string', default: 'bench-results-memory.json' },
    from: { type: 'string' },
  },
});
const earlier =
  flags.from === undefined ? undefined : (JSON.parse(readFileSync(flags.from, 'utf8')) as { reps: number; sizes: number[]; runs: ConnectionMemory[] });

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isInteger(n)) throw new TypeError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

const sizes = earlier?.sizes ?? flags.connections!.split(',').map((n) => positive('connections', n));
const reps = earlier?.reps ?? positive('reps', flags.reps!);
const ids =
  positionals.length > 0 ? positionals : earlier !== undefined ? [...new Set(earlier.runs.map((r) => r.variant))] : ['minimal', 'http-proxy-bare', 'lib-bare'];
for (const id of ids) {
  const v = variant(id);
  if (v.load !== undefined || v.redis === true) throw new Error(`variant ${id} is not supported here (plain HTTP/1.1 ones only)`);
}
const base = ids.includes(flags.base!) ? flags.base! : ids[0]!;

/** Open files this process may have: soft and hard limits (Linux's /proc; the shell's `ulimit` elsewhere). */
function fileLimits(): { soft: number; hard: number } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = line!.slice('Max open files'.length).trim().split(/\s+/);
    return { soft: Number(soft === 'unlimited' ? Infinity : soft), hard: Number(hard === 'unlimited' ? Infinity : hard) };
  } catch {
    const ask = (flag: string): number => Number(spawnSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).stdout.trim()) || Infinity;
    return { soft: ask('-Sn'), hard: ask('-Hn') };
  }
}

const needed = 2 * Math.max(...sizes) + 1000;
const limits = fileLimits();
if (earlier === undefined && limits.soft < needed) {
  if (limits.hard < needed || process.env.BENCH_MEMORY_RAISED === '1') {
    throw new Error(`--connections ${Math.max(...sizes)} needs ${needed} open files; ulimit -Hn is ${limits.hard}: raise it (as root) or lower --connections`);
  }
  process.stderr.write(`ulimit -n ${limits.soft} is below the ${needed} open files needed: running again under ulimit -n ${limits.hard}\n`);
  const again = spawnSync('sh', ['-c', `ulimit -n ${limits.hard} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_MEMORY_RAISED: '1' },
  });
  process.exit(again.status ?? 1);
}

if (Math.min(...sizes) < 1000) {
  process.stderr.write('N below 1,000: a heap reading moves by ~200 kB from one GC to the next, so figures per connection are mostly noise\n');
}

const startedAt = Date.now();
const progress = (message: string): void => void process.stderr.write(`[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(5)} s] ${message}\n`);

const results: ConnectionMemory[] = earlier?.runs ?? [];
const backends = earlier === undefined ? await startHoldBackends() : undefined;
if (backends !== undefined)
  try {
    progress(`${ids.join(', ')}; N = ${sizes.join(', ')}; ${reps} reps, variants interleaved; Node ${process.version}, open files ${limits.soft}`);
    for (let rep = 0; rep < reps; rep++) {
      for (const n of sizes) {
        for (let k = 0; k < ids.length; k++) {
          const id = ids[(k + rep) % ids.length]!;
          const r = await connectionMemory(id, n, backends);
          results.push(r);
          progress(
            `rep ${rep + 1}/${reps} ${id} N = ${n}: per connection idle ${kb(r.idle.heapUsed)} kB heap, in flight ${kb(r.inFlight.heapUsed)} kB, pooled upstream ${kb(r.pooled.heapUsed)} kB (${r.pooled.count} pooled)`,
          );
        }
      }
    }
  } finally {
    await backends.close();
  }

// ---- report

function kb(bytes: number): string {
  return Number.isNaN(bytes) ? 'n/a' : (bytes / 1000).toFixed(2);
}

const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Figure {
  /** Bytes per connection: the median over the reps, and their min–max. */
  median: number;
  min: number;
  max: number;
}
const figure = (values: number[]): Figure => {
  const kept = values.filter((v) => Number.isFinite(v));
  return { median: median(kept), min: kept.length > 0 ? Math.min(...kept) : Number.NaN, max: kept.length > 0 ? Math.max(...kept) : Number.NaN };
};

type Phase = 'idle' | 'inFlight' | 'pooled';
type Metric = 'heapUsed' | 'rss';
const PHASES: Phase[] = ['idle', 'inFlight', 'pooled'];

const summary = sizes.flatMap((n) =>
  ids.map((id) => {
    const runs = results.filter((r) => r.variant === id && r.connections === n);
    const of = (phase: Phase, metric: Metric | 'external'): Figure => figure(runs.map((r) => (r[phase] as PerConnection)[metric]));
    return {
      variant: id,
      description: variant(id).label,
      connections: n,
      // A reading during which the balancer's agent closed some of its pooled sockets (idle 4 s) is left out.
      pooledSockets: median(runs.map((r) => r.pooled.count).filter((c) => c > 0)),
      pooledReps: runs.filter((r) => r.pooled.count > 0).length,
      ...Object.fromEntries(PHASES.map((p) => [p, { heapUsed: of(p, 'heapUsed'), rss: of(p, 'rss'), external: of(p, 'external') }])),
    } as { variant: string; description: string; connections: number; pooledSockets: number; pooledReps: number } & Record<
      Phase,
      Record<Metric | 'external', Figure>
    >;
  }),
);

/** MB (10^6 bytes) per 1,000 connections = kB per connection. */
const cell = (f: Figure): string => (Number.isNaN(f.median) ? 'n/a' : `${kb(f.median)} (${kb(f.min)}–${kb(f.max)})`);

console.log(
  `\nmemory per 1,000 connections, MB (= kB per connection): median over ${reps} reps (min–max); the server process's process.memoryUsage() after a forced GC,`,
);
console.log(`with the connections minus without them; Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}`);
for (const n of sizes) {
  const rows = summary.filter((s) => s.connections === n);
  const baseRow = rows.find((r) => r.variant === base)!;
  const ratio = (r: (typeof rows)[number], phase: Phase): string => {
    const value = r[phase].heapUsed.median / baseRow[phase].heapUsed.median;
    return Number.isNaN(value) ? 'n/a' : value.toFixed(2);
  };
  const header = [
    `N = ${n}`,
    'idle heap',
    'idle RSS',
    'in-flight heap',
    'in-flight RSS',
    'pooled upstream heap',
    'pooled',
    `heap × ${base} (idle / in flight / pooled)`,
  ];
  const lines = rows.map((r) => [
    r.variant,
    cell(r.idle.heapUsed),
    cell(r.idle.rss),
    cell(r.inFlight.heapUsed),
    cell(r.inFlight.rss),
    cell(r.pooled.heapUsed),
    `${Number.isNaN(r.pooledSockets) ? 'n/a' : r.pooledSockets}${r.pooledReps < reps ? ` (${r.pooledReps}/${reps} reps)` : ''}`,
    `${ratio(r, 'idle')} / ${ratio(r, 'inFlight')} / ${ratio(r, 'pooled')}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${line(header)}`);
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(line(l));
}
console.log('\nidle: client connections that made one request and stay open; in flight: a request each that the backend holds (client socket,');
console.log('upstream socket and the request); pooled upstream: per free socket the agent keeps (what closing them frees; `pooled` = how many, at');
console.log(
  'most 256 per backend; "k/R reps": the balancer\'s agent closed idle pooled sockets during the other readings). RSS moves with what V8 and malloc keep or return to the system: trust the heap figures first, RSS at large N.',
);

if (earlier === undefined)
  writeFileSync(
    flags.json!,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpu: os.cpus()[0]?.model,
        reps,
        sizes,
        base,
        summary,
        runs: results,
        seconds: (Date.now() - startedAt) / 1000,
      },
      null,
      2,
    )}\n`,
  );
if (earlier === undefined) console.log(`${flags.json} written; whole run ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
