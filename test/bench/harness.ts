import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ParentMessage, Usage } from './server.js';
import { DEFAULT_PATH, type Load } from './variants.js';

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));

/** Whether `taskset` can pin processes here (util-linux; absent on macOS). */
export const canPin: boolean = (() => {
  if (process.platform !== 'linux') return false;
  return spawnSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }).status === 0;
})();

/** Pins every thread of this process to `cpu`; false when that is not possible. */
export function pinSelf(cpu: number): boolean {
  if (!canPin) return false;
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

export interface ServerProcess {
  /** The variants this process runs, joined by commas. */
  id: string;
  /** URL of the first variant. */
  url: string;
  /** URL of each variant. */
  urls: Record<string, string>;
  child: ChildProcess;
  usage(): Promise<Usage>;
  /** Starts sampling peak RSS every 5 ms. */
  watch(): Promise<Usage>;
  /** Stops sampling; `peakRss` is the highest RSS seen since `watch`. */
  peak(): Promise<Usage>;
  /** Forces a full GC in the server and reads its memory (`afterGc`); needs `nodeArgs: ['--expose-gc']`. */
  heap(): Promise<Usage>;
  /** Starts the V8 CPU profiler in the server (sampling every `interval` µs). */
  profileStart(interval?: number): Promise<Usage>;
  /** Stops it and writes the `.cpuprofile` to `path`. */
  profileStop(path: string): Promise<Usage>;
  close(): Promise<void>;
}

export interface SpawnOptions {
  /** CPU to pin the server to (`taskset -c`); none when undefined or taskset is missing. */
  cpu?: number;
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Another checkout to run the server from (its lib/ and test/bench/), to compare a change against this one. */
  root?: string;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
}

/** Runs variant `id` (or several: `a,b,c`, in one process) in a child process and resolves once it listens. */
export function spawnServer(id: string, targets: readonly string[], options: SpawnOptions = {}): Promise<ServerProcess> {
  const script = options.root === undefined ? SERVER : join(options.root, 'test/bench/server.ts');
  const nodeArgs = [...(options.nodeArgs ?? []), '--import', 'tsx', script, id, targets.join(',')];
  const [command, args] =
    options.cpu !== undefined && canPin ? ['taskset', ['-c', String(options.cpu), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(command as string, args as string[], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: options.root,
    env: options.env === undefined ? undefined : { ...process.env, ...options.env },
  });
  let nextId = 0;
  const pending = new Map<number, (usage: Usage) => void>();
  const ask = (cmd: ParentMessage['cmd'], extra: Partial<ParentMessage> = {}): Promise<Usage> =>
    new Promise<Usage>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, resolve);
      child.send({ ...extra, id, cmd } satisfies ParentMessage, (err) => {
        if (err) {
          pending.delete(id);
          reject(err);
        }
      });
    });
  return new Promise<ServerProcess>((resolve, reject) => {
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.once('exit', (code) => {
      for (const settle of pending.values()) settle({ rss: 0, peakRss: 0, cpu: 0, system: 0, connections: 0 });
      reject(new Error(`bench server ${id} exited with ${code} before listening`));
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'failed') {
        console.error(`bench server ${id} failed: ${message.error}`);
        reject(new Error(`bench server ${id} failed: ${message.error}`));
      } else if (message.type === 'reply') {
        pending.get(message.id)?.(message.usage);
        pending.delete(message.id);
      } else if (message.type === 'ready') {
        const urls = message.urls;
        resolve({
          id,
          url: Object.values(urls)[0]!,
          urls,
          child,
          usage: () => ask('usage'),
          watch: () => ask('watch'),
          peak: () => ask('peak'),
          heap: () => ask('heap'),
          profileStart: (interval?: number) => ask('profile-start', { interval }),
          profileStop: (path: string) => ask('profile-stop', { path }),
          close: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            await ask('close').catch(() => undefined);
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(timer);
          },
        });
      }
    });
  });
}

export interface LoadOptions {
  connections: number;
  /** Seconds. */
  duration: number;
  /** Path and query requested; default `DEFAULT_PATH`. `[<id>]` in it becomes a new id in every request (autocannon only). */
  path?: string;
  /** Default `'autocannon'`; `h2load-*` need `h2load` (Debian's nghttp2-client) on PATH. */
  load?: Load;
  /** Concurrent streams per connection for `h2load-h2` (HTTP/1.1 always has one request in flight per connection); default 1. */
  streams?: number;
}

export interface Measurement {
  /** 2xx responses received. */
  requests: number;
  /** 2xx responses per second over the measured time. */
  rps: number;
  /**
   * Latency percentiles in milliseconds, 10 µs resolution; NaN when the server closed connections
   * (autocannon then pairs responses with the wrong requests and its latencies are meaningless).
   */
  p50: number;
  p99: number;
  /** Mean latency from Little's law (connections / throughput), valid whatever the server does with connections. */
  mean: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Client connections the server accepted while measured; far more than `connections` means it closes them. */
  accepted: number;
  /** CPU the server process used while measured, as a share of one core (1 = 100%). */
  serverCpu: number;
  /** Server CPU time per 2xx response, microseconds: the cost of a request whatever else ran on the machine. */
  cpuPerRequest: number;
  /** Of which system (kernel) time, microseconds: what instruction counts of user space do not see. */
  systemPerRequest: number;
  /** CPU this process (autocannon, and backends when they share it) used while measured, as a share of one core. */
  loadCpu: number;
  /**
   * CPU that other processes on the machine used while measured, as a share of one core (Linux;
   * NaN elsewhere). Above ~0.1 they competed with the server or the load generator and the sample is suspect.
   */
  noise: number;
}

/** autocannon's placeholder for a new id per request (its `idReplacement`). */
const NEW_ID = '[<id>]';

const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

/** User + system CPU time of every process on the machine, µs (interrupt time excluded: that is mostly our own loopback traffic). */
function machineCpu(): number {
  if (process.platform !== 'linux') return Number.NaN;
  try {
    const [user, nice, system] = readFileSync('/proc/stat', 'latin1').slice(0, 200).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as [
      number,
      number,
      number,
    ];
    return (user + nice + system) * TICK_US;
  } catch {
    return Number.NaN;
  }
}

const BUCKET_MS = 0.01;
const BUCKETS = 200_000; // 10 µs steps up to 2 s; slower answers land in the last bucket

/** Latency histogram with 10 µs buckets (autocannon's own rounds to whole milliseconds). */
class Histogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;
  record(ms: number): void {
    this.#counts[Math.min(BUCKETS - 1, Math.floor(ms / BUCKET_MS))]!++;
    this.#total++;
  }
  percentile(p: number): number {
    if (this.#total === 0) return Number.NaN;
    const rank = Math.ceil((p / 100) * this.#total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return (i + 1) * BUCKET_MS;
    }
    return BUCKETS * BUCKET_MS;
  }
}

/** Loads `server` with autocannon (in this process) or h2load (`options.load`) and reads the server's CPU time around it. */
export async function measure(server: Pick<ServerProcess, 'url' | 'usage'>, options: LoadOptions): Promise<Measurement> {
  if (options.load !== undefined && options.load !== 'autocannon') return measureH2load(server, options);
  const histogram = new Histogram();
  const before = await server.usage();
  const loadBefore = process.cpuUsage();
  const machineBefore = machineCpu();
  const began = process.hrtime.bigint();
  const instance = autocannon({
    url: `${server.url}${options.path ?? DEFAULT_PATH}`,
    idReplacement: options.path?.includes(NEW_ID) === true,
    connections: options.connections,
    duration: options.duration,
    timeout: 10,
    sampleInt: 100,
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) histogram.record(responseTime);
  });
  const result = await instance;
  const elapsedUs = Number(process.hrtime.bigint() - began) / 1000;
  const load = process.cpuUsage(loadBefore);
  const machine = machineCpu() - machineBefore;
  const after = await server.usage();
  const requests = result['2xx'];
  const rps = requests / (elapsedUs / 1e6);
  const accepted = after.connections - before.connections;
  const closes = accepted > 2 * options.connections;
  return {
    requests,
    rps,
    p50: closes ? Number.NaN : histogram.percentile(50),
    p99: closes ? Number.NaN : histogram.percentile(99),
    mean: (options.connections / rps) * 1000,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    accepted,
    serverCpu: (after.cpu - before.cpu) / elapsedUs,
    cpuPerRequest: (after.cpu - before.cpu) / requests,
    systemPerRequest: (after.system - before.system) / requests,
    loadCpu: (load.user + load.system) / elapsedUs,
    noise: Math.max(0, machine - (after.cpu - before.cpu) - load.user - load.system) / elapsedUs,
  };
}

/** Whether `h2load` (Debian's nghttp2-client) is on PATH, for the h2 and HTTPS/1.1 variants. */
export const hasH2load: boolean = spawnSync('h2load', ['--version'], { stdio: 'ignore' }).error === undefined;

/**
 * CPU time of this process's children that ended and were waited for (h2load), µs: fields
 * cutime + cstime of /proc/self/stat (Linux; NaN elsewhere).
 */
function childrenCpu(): number {
  if (process.platform !== 'linux') return Number.NaN;
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd (state) on
  return (Number(fields[13]) + Number(fields[14])) * TICK_US;
}

/** Seconds of h2load warm-up: connections (and TLS handshakes) are made then, outside the measured window. */
const H2LOAD_WARMUP = 0.3;

/** h2load runs not over this long after their warm-up and duration are taken for hung, killed, and measured again... */
const H2LOAD_GRACE_MS = 3000;
/** ...up to this many times in all. */
const H2LOAD_ATTEMPTS = 3;

/** Thrown by one h2load run that did not end by itself. */
class H2loadHung extends Error {}

/**
 * Loads `server` with h2load over TLS, as h2 (`h2load-h2`, `streams` per connection) or HTTP/1.1
 * (`h2load-h1`). h2load's warm-up opens the connections first, so the server CPU read excludes
 * the TLS handshakes; latencies come from its per-request log. Now and then (mostly against a
 * server just started) h2load 1.52 says "Stopped all clients" and yet goes on sending requests:
 * such a run is killed and measured again.
 */
async function measureH2load(server: Pick<ServerProcess, 'url' | 'usage'>, options: LoadOptions): Promise<Measurement> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await measureH2loadOnce(server, options);
    } catch (err) {
      if (!(err instanceof H2loadHung) || attempt === H2LOAD_ATTEMPTS) throw err;
      process.stderr.write(`${err.message}; measuring again\n`);
    }
  }
}

async function measureH2loadOnce(server: Pick<ServerProcess, 'url' | 'usage'>, options: LoadOptions): Promise<Measurement> {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-balancer-h2load-'));
  const log = join(dir, 'requests.tsv');
  const h1 = options.load === 'h2load-h1';
  const args = [
    ...(h1 ? ['--h1'] : []),
    `--clients=${options.connections}`,
    `--max-concurrent-streams=${h1 ? 1 : (options.streams ?? 1)}`,
    `--warm-up-time=${H2LOAD_WARMUP * 1000}ms`,
    `--duration=${Math.round(options.duration * 1000)}ms`,
    `--log-file=${log}`,
    `${server.url}${options.path ?? DEFAULT_PATH}`,
  ];
  try {
    const loadBefore = process.cpuUsage();
    const childrenBefore = childrenCpu();
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    let hung = false;
    const watchdog = setTimeout(
      () => {
        hung = true;
        child.kill('SIGKILL');
      },
      (H2LOAD_WARMUP + options.duration) * 1000 + H2LOAD_GRACE_MS,
    );
    // Read the server's CPU once the warm-up (connecting) is over, and again when h2load ends.
    await new Promise((resolve) => setTimeout(resolve, H2LOAD_WARMUP * 1000));
    const before = await server.usage();
    const machineBefore = machineCpu();
    const began = process.hrtime.bigint();
    const code = await exited.finally(() => clearTimeout(watchdog));
    if (hung) throw new H2loadHung(`h2load against ${server.url} did not stop after ${options.duration} s`);
    const elapsedUs = Number(process.hrtime.bigint() - began) / 1000;
    const after = await server.usage();
    const machine = machineCpu() - machineBefore;
    const own = process.cpuUsage(loadBefore);
    const loadUs = own.user + own.system + (childrenCpu() - childrenBefore);
    if (code !== 0) throw new Error(`h2load exited with ${code}: ${output.trim()}`);
    const count = (pattern: RegExp): number => Number(pattern.exec(output)?.[1] ?? Number.NaN);
    // h2load counts requests of the main duration only (its "finished in" includes the warm-up).
    const ok = count(/(\d+) succeeded/);
    const histogram = new Histogram();
    for (const row of readFileSync(log, 'latin1').split('\n')) {
      const [, status, micros] = row.split('\t');
      if (status?.startsWith('2')) histogram.record(Number(micros) / 1000);
    }
    const rps = ok / options.duration;
    const serverUs = after.cpu - before.cpu;
    return {
      requests: ok,
      rps,
      p50: histogram.percentile(50),
      p99: histogram.percentile(99),
      mean: ((options.connections * (h1 ? 1 : (options.streams ?? 1))) / rps) * 1000,
      errors: count(/(\d+) errored/), // h2load's "failed" are the non-2xx responses
      timeouts: count(/(\d+) timeout/),
      non2xx: count(/\d+ 2xx, (\d+) 3xx/) + count(/(\d+) 4xx/) + count(/(\d+) 5xx/),
      accepted: after.connections - before.connections,
      serverCpu: serverUs / elapsedUs,
      cpuPerRequest: serverUs / ok,
      systemPerRequest: (after.system - before.system) / ok,
      loadCpu: loadUs / elapsedUs,
      noise: Math.max(0, machine - serverUs - loadUs) / elapsedUs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
