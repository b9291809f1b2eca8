/**
 * `npm run bench:instructions`: instructions per request of the server variants, counted by
 * valgrind (cachegrind, `--cache-sim=no`) instead of timed, so that a 1% change shows on a shared
 * machine whose speed swings 2.5× within the hour.
 *
 * For each variant the server (`instructions-server.ts`, one variant of `servers.ts`) runs under
 * valgrind; the backends (`backends.ts`) and the load generator run natively, in this process. The
 * load is `--clients` keep-alive connections each sending one request after the other (the pace
 * is the slow server's), 1 KB answers.
 *
 * `--method window` (default): one server process under callgrind serves W requests (`--warmup`),
 * is told to call process.cpuUsage() (where callgrind dumps its counters, `--dump-before`), serves
 * N more (`--requests`), dumps again; instructions per request = the instructions between the two
 * dumps / N. `--method counts`: one process under cachegrind serves W requests, is stopped (exit
 * 0, so cachegrind writes its totals) and its `I refs` read; another serves W + N; instructions
 * per request = (Ir(W+N) − Ir(W)) / N. The second is the simpler method but its two processes'
 * start-up and warm-up (~6e9 instructions) differ by ~1% from run to run, which is 5–20% of the
 * N requests' share: measured on one shared 2-core machine, counts' spreads over 3 reps were
 * 4–20%, the window's under 1%. `--reps` repetitions, interleaved; the median is reported with the
 * min–max over the repetitions.
 *
 * `--rev REV` (repeatable) runs the project's variants (`lib-*`) from a temporary `git worktree`
 * of each revision (under the system temp dir, `node_modules` symlinked to this checkout's), e.g.
 * `npm run bench:instructions -- --rev ed0d83c --rev main`: lib-bare at both, interleaved. `--rev .`
 * is this working tree as it is, uncommitted changes included. The other variants (minimal,
 * http-proxy-*, node-memory) run once, from this checkout.
 *
 * Usage: npm run bench:instructions -- [variant ...] [--rev REV ...] [--warmup W (1000)] [--requests N (2000)]
 *   [--reps R (3)] [--clients C (10)] [--base LABEL] [--json FILE (bench-results-instructions.json)]
 *   [--method window|counts] [--node-arg FLAG ...] [--keep-worktrees] [--keep-out DIR (keeps each count's cachegrind.out there, for cg_annotate / cg_diff)]
 * Variants (ids of variants.ts): minimal, node-memory, express-memory, lib-bare, lib-express, lib-connect,
 * lib-express4, lib-bare-cache, lib-express-cache, http-proxy-bare, http-proxy-express, ... (not the TLS or Redis ones).
 * Default: minimal http-proxy-bare lib-bare; with --rev, lib-bare.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BODY_SIZE, startBackends } from './backends.js';
import type { InstructionsMessage } from './instructions-server.js';
import { DEFAULT_PATH, variant, type Variant } from './variants.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ENTRY = join(HERE, 'instructions-server.ts');
const ROOT = realpathSync(join(HERE, '../..'));

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rev: { type: 'string', multiple: true, default: [] },
    warmup: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '2000' },
    reps: { type: 'string', default: '3' },
    clients: { type: 'string', default: '10' },
    base: { type: 'string' },
    json: { type: 'string', default: 'bench-results-instructions.json' },
    'node-arg': { type: 'string', multiple: true, default: [] },
    'keep-worktrees': { type: 'boolean', default: false },
    'keep-out': { type: 'string' },
    method: { type: 'string', default: 'window' },
    'start-timeout': { type: 'string', default: '300' },
    'request-timeout': { type: 'string', default: '120' },
  },
});

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isInteger(n)) throw new TypeError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

const warmup = positive('warmup', flags.warmup!);
const requests = positive('requests', flags.requests!);
const reps = positive('reps', flags.reps!);
const clients = positive('clients', flags.clients!);
const startTimeout = positive('start-timeout', flags['start-timeout']!) * 1000;
const requestTimeout = positive('request-timeout', flags['request-timeout']!) * 1000;
const nodeArgs = flags['node-arg']!;
if (flags.method !== 'window' && flags.method !== 'counts') throw new TypeError(`--method must be window or counts, got ${flags.method}`);
const windowed = flags.method === 'window';
const revs = flags.rev!;

const ids = positionals.length > 0 ? positionals : revs.length > 0 ? ['lib-bare'] : ['minimal', 'http-proxy-bare', 'lib-bare'];
const variants: Variant[] = ids.map((id) => {
  const v = variant(id);
  if (v.load !== undefined || v.redis === true || v.id === 'fastify') throw new Error(`variant ${id} is not supported here (plain HTTP/1.1 ones only)`);
  return v;
});
const isProject = (v: Variant): boolean => v.id.startsWith('lib-');

const startedAt = Date.now();
const progress = (message: string): void => void process.stderr.write(`[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(5)} s] ${message}\n`);

// ---- revisions

interface Checkout {
  /** As given on the command line (`.` for this working tree). */
  rev: string;
  /** Commit, short; `worktree` for `.`. */
  sha: string;
  root: string;
  temporary: boolean;
}

const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();

function checkout(rev: string): Checkout {
  if (rev === '.') return { rev, sha: `worktree (${git('rev-parse', '--short', 'HEAD')}+changes)`, root: ROOT, temporary: false };
  const sha = git('rev-parse', '--short', `${rev}^{commit}`);
  const root = join(os.tmpdir(), `proxy-balancer-instructions-${sha}`);
  if (!existsSync(join(root, 'test/bench/servers.ts'))) {
    progress(`git worktree add ${root} (${rev} = ${sha})`);
    git('worktree', 'add', '--detach', '--force', root, sha);
  }
  if (!existsSync(join(root, 'node_modules'))) symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(root, 'node_modules'));
  return { rev, sha, root, temporary: true };
}

const here: Checkout = { rev: '', sha: git('rev-parse', '--short', 'HEAD'), root: ROOT, temporary: false };
const checkouts = revs.map(checkout);

interface Job {
  label: string;
  variant: Variant;
  checkout: Checkout;
}

const jobs: Job[] = [];
for (const v of variants) {
  if (isProject(v) && checkouts.length > 0) for (const c of checkouts) jobs.push({ label: `${v.id}@${c.rev}`, variant: v, checkout: c });
  else jobs.push({ label: v.id, variant: v, checkout: here });
}
const base = flags.base ?? jobs[0]!.label;
if (!jobs.some((j) => j.label === base)) throw new Error(`--base ${base} is none of ${jobs.map((j) => j.label).join(', ')}`);

// ---- one count

const valgrindVersion = spawnSync('valgrind', ['--version'], { encoding: 'utf8' }).stdout?.trim();
if (!valgrindVersion) throw new Error('valgrind not found (apt-get install valgrind)');

const backends = await startBackends();
// Variants marked `h2c` proxy to HTTP/2 (prior knowledge) backends.
const h2cBackends = await startBackends({ h2c: true });

interface Started {
  port: number;
  exited: Promise<number | null>;
  close(): void;
  /** Calls process.cpuUsage() in the server (callgrind dumps its counters there). */
  mark(): Promise<void>;
  stderr(): string;
}

/** Valgrind's arguments: callgrind dumping at each mark (`--method window`), or cachegrind for the W and W + N counts (`--method counts`). */
const valgrindArgs = (outFile: string): string[] =>
  windowed
    ? [
        '--tool=callgrind',
        '--dump-before=node::*CPUUsage*',
        '--compress-strings=no',
        '--compress-pos=no',
        '--dump-instr=no',
        '--collect-jumps=no',
        `--callgrind-out-file=${outFile}`,
      ]
    : ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${outFile}`];

/** Starts `job`'s server, under valgrind when `outFile` is given, and resolves once it listens. */
function startServer(job: Job, outFile?: string): Promise<Started> {
  const node = [
    ...nodeArgs,
    '--import',
    'tsx',
    ENTRY,
    job.variant.id,
    join(job.checkout.root, 'test/bench/servers.ts'),
    (job.variant.h2c === true ? h2cBackends : backends).urls.join(','),
  ];
  const [command, args] = outFile === undefined ? [process.execPath, node] : ['valgrind', [...valgrindArgs(outFile), process.execPath, ...node]];
  // The checkout's tsconfig.json maps `proxy-balancer` to its lib/.
  const child = spawn(command as string, args as string[], { cwd: job.checkout.root, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${job.label}: not listening after ${startTimeout / 1000} s\n${stderr}`));
    }, startTimeout);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${job.label}: server exited with ${code} before listening\n${stderr}`));
    });
    let marked: (() => void) | undefined;
    child.on('message', (message: InstructionsMessage) => {
      clearTimeout(timer);
      if (message.type === 'marked') {
        marked?.();
        return;
      }
      if (message.type === 'failed') {
        reject(new Error(`${job.label}: ${message.error}`));
        return;
      }
      resolve({
        port: message.port,
        exited,
        close: () => void child.send({ cmd: 'close' }, (err) => err && child.kill('SIGTERM')),
        mark: () =>
          new Promise<void>((done, failed) => {
            marked = done;
            child.send({ cmd: 'mark' }, (err) => err && failed(err));
          }),
        stderr: () => stderr,
      });
    });
  });
}

/** `total` requests over `clients` keep-alive connections, each waiting for its answer before the next request. */
async function load(port: number, path: string, total: number, agent: http.Agent): Promise<void> {
  let issued = 0;
  let bad = 0;
  const one = (n: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: path.replace('[<id>]', String(n)), agent, timeout: requestTimeout }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => void (bytes += chunk.length));
        res.on('end', () => {
          if (res.statusCode !== 200 || bytes !== BODY_SIZE) bad++;
          resolve();
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${requestTimeout / 1000} s`)));
      req.on('error', reject);
    });
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (issued < total) await one(issued++);
    }),
  );
  if (bad > 0) throw new Error(`${bad} of ${total} answers were not 200 with ${BODY_SIZE} bytes`);
}

/**
 * V8's optimizing compilers (TurboFan, Maglev, Turboshaft) and their zone allocator. They still
 * run well after W = 1000 requests (functions called once per request reach the tier-up budget
 * late), and when they run depends on thread scheduling: their instructions are most of the
 * noise, so they are also reported apart.
 */
const JIT_COMPILER = /v8::internal::(?:compiler|maglev|turboshaft)::|v8::internal::Zone::|v8::internal::Optimized?Compilation/;

/** Total Ir, and the Ir of functions matching `JIT_COMPILER`, from a cachegrind.out file (`--cache-sim=no`: one event). */
function readOut(text: string): { total: number; compiler: number } {
  let total = 0;
  let compiler = 0;
  let inCompiler = false;
  let callLine = false;
  for (const line of text.split('\n')) {
    const c = line.charCodeAt(0);
    if (callLine)
      callLine = false; // callgrind: the inclusive cost of a call, counted in the callee already
    else if (line.startsWith('calls=')) callLine = true;
    else if (c >= 48 && c <= 57) {
      const n = Number(line.slice(line.indexOf(' ') + 1));
      total += n;
      if (inCompiler) compiler += n;
    } else if (line.startsWith('fn=')) inCompiler = JIT_COMPILER.test(line);
  }
  return { total, compiler };
}

interface Count {
  requests: number;
  ir: number;
  /** Ir of V8's optimizing compilers (`JIT_COMPILER`). */
  compilerIr: number;
  seconds: number;
}

/** Total instructions (`I refs`) of `job`'s server process serving `total` requests. */
async function count(job: Job, total: number, rep: number): Promise<Count> {
  const began = Date.now();
  const dir = mkdtempSync(join(os.tmpdir(), 'pb-cachegrind-'));
  const outFile = join(dir, 'cachegrind.out');
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  try {
    const server = await startServer(job, outFile);
    try {
      await load(server.port, job.variant.path ?? DEFAULT_PATH, total, agent);
    } finally {
      server.close();
    }
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([server.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, 300_000, 'timeout')))]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${job.label}: server under valgrind ended with ${code}\n${server.stderr().slice(-4000)}`);
    const fromStderr = /I\s+refs:\s+([\d,]+)/.exec(server.stderr())?.[1];
    const text = readFileSync(outFile, 'latin1');
    const fromFile = /^summary:\s+(\d+)/m.exec(text)?.[1];
    const ir = Number((fromFile ?? fromStderr ?? '').replaceAll(',', ''));
    const { compiler: compilerIr } = readOut(text);
    if (!(ir > 0)) throw new Error(`${job.label}: no I refs in cachegrind's output\n${server.stderr().slice(-4000)}`);
    if (flags['keep-out'] !== undefined) {
      mkdirSync(flags['keep-out'], { recursive: true });
      copyFileSync(outFile, join(flags['keep-out'], `cachegrind.out.${job.label.replace(/[^\w.@-]/g, '_')}.rep${rep + 1}.${total}`));
    }
    return { requests: total, ir, compilerIr, seconds: (Date.now() - began) / 1000 };
  } finally {
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `--method window`: one callgrind process serving W + N requests; the instructions between the marks after W and after W + N. */
async function windowCount(job: Job, rep: number): Promise<Count> {
  const began = Date.now();
  const dir = mkdtempSync(join(os.tmpdir(), 'pb-callgrind-'));
  const outFile = join(dir, 'callgrind.out');
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  try {
    const server = await startServer(job, outFile);
    try {
      const path = job.variant.path ?? DEFAULT_PATH;
      await load(server.port, path, warmup, agent);
      await server.mark();
      await load(server.port, path, requests, agent);
      await server.mark();
    } finally {
      server.close();
    }
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([server.exited, new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, 300_000, 'timeout')))]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${job.label}: server under valgrind ended with ${code}\n${server.stderr().slice(-4000)}`);
    // Dump 1: start to the first mark; 2: the window; 3: the rest.
    const windowFile = `${outFile}.2`;
    if (!existsSync(windowFile)) throw new Error(`${job.label}: callgrind wrote no ${windowFile}\n${server.stderr().slice(-4000)}`);
    if (existsSync(`${outFile}.4`)) throw new Error(`${job.label}: more than two dumps: something else in the server calls process.cpuUsage()`);
    const text = readFileSync(windowFile, 'latin1');
    const { total: ir, compiler: compilerIr } = readOut(text);
    if (flags['keep-out'] !== undefined) {
      mkdirSync(flags['keep-out'], { recursive: true });
      copyFileSync(windowFile, join(flags['keep-out'], `callgrind.out.${job.label.replace(/[^\w.@-]/g, '_')}.rep${rep + 1}.window`));
    }
    return { requests, ir, compilerIr, seconds: (Date.now() - began) / 1000 };
  } finally {
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the run

interface Rep {
  w: Count;
  wn: Count;
  perRequest: number;
  /** The same without V8's optimizing compilers' instructions. */
  perRequestNoJit: number;
}
const results = new Map<string, Rep[]>(jobs.map((j) => [j.label, []]));

try {
  // Natively, once per job: tsx compiles (and caches) the checkout's TypeScript, so no count pays for that.
  for (const job of jobs) {
    const server = await startServer(job);
    server.close();
    await server.exited;
  }
  progress(
    `${jobs.length} variant(s) × ${reps} reps × ${windowed ? '1 callgrind process (W + N requests, counted between them)' : '2 counts (W and W + N requests)'}, W = ${warmup}, N = ${requests}, ${clients} keep-alive clients; ${valgrindVersion}, Node ${process.version}`,
  );
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < jobs.length; k++) {
      // Each rep starts one job later and swaps which count comes first, so drift does not favour one.
      const job = jobs[(k + rep) % jobs.length]!;
      if (windowed) {
        const c = await windowCount(job, rep);
        const perRequest = c.ir / requests;
        const perRequestNoJit = (c.ir - c.compilerIr) / requests;
        progress(
          `rep ${rep + 1}/${reps} ${job.label}: ${Math.round(perRequest).toLocaleString('en-US')} instructions/request, ${Math.round(perRequestNoJit).toLocaleString('en-US')} without JIT compiling (${c.seconds.toFixed(0)} s)`,
        );
        results.get(job.label)!.push({ w: c, wn: c, perRequest, perRequestNoJit });
        continue;
      }
      const totals = (rep + k) % 2 === 0 ? [warmup, warmup + requests] : [warmup + requests, warmup];
      const counts: Count[] = [];
      for (const total of totals) {
        const c = await count(job, total, rep);
        progress(`rep ${rep + 1}/${reps} ${job.label}: ${total} requests, ${c.ir.toLocaleString('en-US')} Ir, ${c.seconds.toFixed(0)} s`);
        counts.push(c);
      }
      const [w, wn] = counts[0]!.requests === warmup ? [counts[0]!, counts[1]!] : [counts[1]!, counts[0]!];
      const perRequest = (wn.ir - w.ir) / requests;
      const perRequestNoJit = (wn.ir - wn.compilerIr - (w.ir - w.compilerIr)) / requests;
      progress(
        `rep ${rep + 1}/${reps} ${job.label}: ${Math.round(perRequest).toLocaleString('en-US')} instructions/request, ${Math.round(perRequestNoJit).toLocaleString('en-US')} without JIT compiling`,
      );
      results.get(job.label)!.push({ w, wn, perRequest, perRequestNoJit });
    }
  }
} finally {
  await backends.close();
  await h2cBackends.close();
  for (const c of checkouts) {
    if (!c.temporary || flags['keep-worktrees']) continue;
    spawnSync('git', ['worktree', 'remove', '--force', c.root], { cwd: ROOT, stdio: 'ignore' });
  }
}

// ---- report

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const stats = (values: number[]): { median: number; min: number; max: number; spread: number } => {
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { median: m, min, max, spread: (max - min) / m };
};
const rows = jobs.map((job) => {
  const runs = results.get(job.label)!;
  return {
    label: job.label,
    variant: job.variant.id,
    description: job.variant.label,
    rev: job.checkout.rev === '' ? undefined : job.checkout.rev,
    commit: job.checkout.sha,
    ...stats(runs.map((r) => r.perRequest)),
    noJit: stats(runs.map((r) => r.perRequestNoJit)),
    reps: runs,
  };
});
const baseRow = rows.find((r) => r.label === base)!;
const table = rows.map((r) => ({ ...r, ratio: r.median / baseRow.median, noJitRatio: r.noJit.median / baseRow.noJit.median }));

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (n: number): string => `${(n * 100).toFixed(1)}%`;
const seconds = rows.flatMap((r) => r.reps.flatMap((rep) => [rep.w.seconds, rep.wn.seconds]));
console.log(
  `\ninstructions per request (${windowed ? 'callgrind Ir of one process between the ends of requests W and W + N, / N' : 'cachegrind I refs, (Ir(W+N) − Ir(W)) / N'}; W = ${warmup}, N = ${requests}, ${clients} keep-alive clients, 1 KB answers; median of ${reps} reps)`,
);
console.log(
  `Node ${process.version}, ${valgrindVersion}, ${os.cpus()[0]?.model ?? 'unknown CPU'}${nodeArgs.length > 0 ? `, node ${nodeArgs.join(' ')}` : ''}\n`,
);
const header = ['variant', 'commit', 'instr/req', 'min–max', 'spread', `× ${base}`, 'w/o JIT compiler', 'min–max', 'spread', `× ${base}`];
const lines = table.map((r) => [
  r.label,
  r.commit,
  int(r.median),
  `${int(r.min)}–${int(r.max)}`,
  pct(r.spread),
  r.ratio.toFixed(3),
  int(r.noJit.median),
  `${int(r.noJit.min)}–${int(r.noJit.max)}`,
  pct(r.noJit.spread),
  r.noJitRatio.toFixed(3),
]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const l of lines) console.log(line(l));
console.log('\nspread: (max − min) / median over the reps; a ratio between two rows means something only beyond their spreads. w/o JIT compiler: the same');
console.log(
  "without the instructions of V8's optimizing compilers (functions v8::internal::compiler::* etc.), which still run after the warm-up, at times set by thread scheduling.",
);
console.log(
  `One ${windowed ? 'server process' : 'count'} took ${Math.min(...seconds).toFixed(0)}–${Math.max(...seconds).toFixed(0)} s; the whole run ${((Date.now() - startedAt) / 1000).toFixed(0)} s.`,
);

writeFileSync(
  flags.json!,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      valgrind: valgrindVersion,
      cpu: os.cpus()[0]?.model,
      nodeArgs,
      method: flags.method,
      warmup,
      requests,
      reps,
      clients,
      base,
      results: table,
      seconds: (Date.now() - startedAt) / 1000,
    },
    null,
    2,
  )}\n`,
);
console.log(`${flags.json} written`);
