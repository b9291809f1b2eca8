/**
 * `npm run bench:syscalls`: system calls per request of the server variants, counted by strace:
 * what instruction counts (`bench:instructions`, user space only) cannot see, and as deaf to the
 * machine's load as they are. The server (`instructions-server.ts`, one variant of `servers.ts`)
 * runs under `strace -f` (every thread), the backends and the load (C keep-alive clients, each
 * sending its next request when the last is answered, 1 KB answers) natively here. It serves W
 * requests, is told to call process.cpuUsage() (a `getrusage` system call: the mark), serves N more,
 * and is marked again; system calls per request = the calls between the two marks / N, by name.
 * strace slows the server several times over, which changes no count but the `epoll_pwait`s (how
 * often the event loop found nothing to do), left out of the total for that reason.
 *
 * Usage: npm run bench:syscalls -- [variant ...] [--warmup W (1000)] [--requests N (2000)] [--clients C (10)] [--reps R (2)]
 * Default variants: minimal http-proxy-bare lib-bare.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BODY_SIZE, startBackends } from './backends.js';
import type { InstructionsMessage } from './instructions-server.js';
import { DEFAULT_PATH, variant } from './variants.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    warmup: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '2000' },
    clients: { type: 'string', default: '10' },
    reps: { type: 'string', default: '2' },
  },
});
function positive(name: string, value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isInteger(n)) throw new TypeError(`--${name} must be a positive integer, got ${value}`);
  return n;
}
const warmup = positive('warmup', flags.warmup!);
const requests = positive('requests', flags.requests!);
const clients = positive('clients', flags.clients!);
const reps = positive('reps', flags.reps!);
const ids = positionals.length > 0 ? positionals : ['minimal', 'http-proxy-bare', 'lib-bare'];
for (const id of ids) {
  const v = variant(id);
  if (v.load !== undefined || v.redis === true || v.id === 'fastify') throw new Error(`variant ${id} is not supported here (plain HTTP/1.1 ones only)`);
}
if (spawnSync('strace', ['-V'], { stdio: 'ignore' }).error !== undefined) throw new Error('strace not found (apt-get install strace)');

/** `total` requests over `clients` keep-alive connections, each waiting for its answer before the next. */
async function load(port: number, path: string, total: number, agent: http.Agent): Promise<void> {
  let issued = 0;
  const one = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent }, (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => void (bytes += chunk.length));
          res.on('end', () => (res.statusCode === 200 && bytes === BODY_SIZE ? resolve() : reject(new Error(`status ${res.statusCode}, ${bytes} bytes`))));
          res.on('error', reject);
        })
        .on('error', reject);
    });
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (issued++ < total) await one();
    }),
  );
}

/** System calls by name between the last two `getrusage` calls of an `strace -f` log. */
function countBetweenMarks(log: string): Map<string, number> {
  const lines = log.split('\n');
  const marks = lines.flatMap((line, i) => (/^\d+\s+getrusage\(/.test(line) ? [i] : []));
  if (marks.length < 2) throw new Error(`strace log has ${marks.length} getrusage marks, 2 expected`);
  const counts = new Map<string, number>();
  for (const line of lines.slice(marks.at(-2)! + 1, marks.at(-1)!)) {
    // `PID name(args) = result`, or a call another thread interrupted: `PID name(args <unfinished ...>` (its resumption is not counted again).
    const name = /^\d+\s+([a-z_0-9]+)\(/.exec(line)?.[1];
    if (name !== undefined) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

async function count(id: string, urls: string[]): Promise<Map<string, number>> {
  const dir = mkdtempSync(join(os.tmpdir(), 'pb-strace-'));
  const out = join(dir, 'strace.log');
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const child = spawn(
    'strace',
    ['-f', '-qq', '-o', out, process.execPath, '--import', 'tsx', join(HERE, 'instructions-server.ts'), id, join(HERE, 'servers.ts'), urls.join(',')],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    let marked: (() => void) | undefined;
    const port = await new Promise<number>((resolve, reject) => {
      child.on('message', (message: InstructionsMessage) => {
        if (message.type === 'ready') resolve(message.port);
        else if (message.type === 'marked') marked?.();
        else if (message.type === 'failed') reject(new Error(`${id}: ${message.error}`));
      });
      void exited.then((code) => reject(new Error(`${id}: server exited with ${code} before listening`)));
    });
    const mark = (): Promise<void> => new Promise<void>((resolve) => ((marked = resolve), child.send({ cmd: 'mark' })));
    await load(port, DEFAULT_PATH, warmup, agent);
    await mark();
    await load(port, DEFAULT_PATH, requests, agent);
    await mark();
    child.send({ cmd: 'close' });
    await exited;
    return countBetweenMarks(readFileSync(out, 'latin1'));
  } finally {
    agent.destroy();
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const backends = await startBackends();
const runs = new Map<string, Map<string, number>[]>(ids.map((id) => [id, []]));
try {
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < ids.length; k++) {
      const id = ids[(k + rep) % ids.length]!;
      const counts = await count(id, backends.urls);
      runs.get(id)!.push(counts);
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      process.stderr.write(`rep ${rep + 1}/${reps} ${id}: ${(total / requests).toFixed(2)} system calls per request\n`);
    }
  }
} finally {
  await backends.close();
}

/** The event loop's waits for I/O: how often it went idle, which strace's slowness decides. */
const IDLE_WAITS = new Set(['epoll_wait', 'epoll_pwait', 'epoll_pwait2']);
const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const perRequest = (id: string, name?: string): number =>
  median(
    runs
      .get(id)!
      .map((c) => (name === undefined ? [...c.entries()].filter(([n]) => !IDLE_WAITS.has(n)).reduce((a, [, v]) => a + v, 0) : (c.get(name) ?? 0)) / requests),
  );
const names = [...new Set(ids.flatMap((id) => runs.get(id)!.flatMap((c) => [...c.keys()])))]
  .filter((n) => ids.some((id) => perRequest(id, n) >= 0.05))
  .sort((a, b) => perRequest(ids.at(-1)!, b) - perRequest(ids.at(-1)!, a));
console.log(
  `\nsystem calls per request (strace -f, all threads, between marks after W = ${warmup} and W + N = ${warmup + requests} requests; ${clients} keep-alive clients, 1 KB answers; median of ${reps} reps)\n`,
);
const header = ['variant', 'total w/o epoll waits', ...names];
const rows = ids.map((id) => [id, perRequest(id).toFixed(2), ...names.map((n) => perRequest(id, n).toFixed(2))]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log('\nepoll_(p)wait depends on how often the (strace-slowed) event loop went idle, not on the variant: it is left out of the total.');
console.log('futex: wake-ups of other threads (V8 GC and compiler tasks, the libuv pool).');
