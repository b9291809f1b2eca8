/**
 * `npm run bench -- --soak`: the library with every feature on (the `lib-soak` variant: cache,
 * metrics, a rate limit that never refuses, health checks every second, retries of upstream 503s,
 * least connections) under steady load for several phases, with its heap read after a forced GC
 * (the server runs with `--expose-gc`) and its RSS after each. The heap is flat when the last
 * phase's is within `max(10%, 5 MB)` of the first's: a leak of even 100 bytes a request grows it
 * by several times that over two 15 s phases.
 *
 * Each connection cycles through three kinds of request: a cacheable one over `KEYS` keys (misses
 * until the cache holds them all, within the warm-up, then hits), an uncacheable one with a new URL
 * each time (a miss that is proxied, and a new cache key the cache must not keep), and one to
 * `FLAKY_PATH`, whose 503s are retried. `/metrics` is scraped once a second.
 */
import autocannon from 'autocannon';
import http from 'node:http';
import { FLAKY_PATH, NO_STORE_PATH, startBackends } from './backends.js';
import { spawnServer, type ServerProcess } from './harness.js';

/** Cacheable keys (and flaky ones): few enough that the cache holds them all after the warm-up. */
const KEYS = 1000;
const MB = 2 ** 20;
/** The heap is flat when it grew by at most this share of the first phase's... */
const GROWTH_SHARE = 0.1;
/** ...or by at most this many bytes, whichever is larger. */
const GROWTH_BYTES = 5 * MB;

export interface SoakOptions {
  phases: number;
  /** Seconds per phase. */
  phaseDuration: number;
  connections: number;
  /** CPU to pin the server to. */
  cpu?: number;
  /** Seconds of load before the first phase; default 3 (at most `phaseDuration`). */
  warmup?: number;
  progress?: (message: string) => void;
}

/** A `lib-soak` server already running (started with `--expose-gc`) against running backends: the smoke test's. */
export type SoakServer = Pick<ServerProcess, 'url' | 'heap'>;

export interface SoakPhase {
  /** 0 is the warm-up, not judged. */
  phase: number;
  requests: number;
  rps: number;
  errors: number;
  non2xx: number;
  /** After a forced GC, bytes. */
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

export interface SoakResult {
  phaseDuration: number;
  connections: number;
  phases: SoakPhase[];
  /** Heap after GC, last phase minus first, bytes. */
  growth: number;
  /** Growth allowed: max(10% of the first phase's heap, 5 MB). */
  allowed: number;
  flat: boolean;
  /** Counters from the server's `/metrics` at the end, showing every feature was exercised (retries, cache hits, misses...). */
  counters: Record<string, number>;
}

/** The `/metrics` counters the soak reports. */
const COUNTERS = ['retries_total', 'cache_hits_total', 'cache_misses_total', 'cache_stored_total', 'cache_coalesced_total', 'rate_limited_total'];

/** One phase of load: the three kinds of request in turn on every connection. */
async function load(server: SoakServer, connections: number, seconds: number): Promise<Pick<SoakPhase, 'requests' | 'rps' | 'errors' | 'non2xx'>> {
  let n = 0;
  const result = await autocannon({
    url: server.url,
    connections,
    duration: seconds,
    timeout: 10,
    sampleInt: 100, // autocannon stops on a sample tick: its default 1 s would round short phases up
    requests: [
      { setupRequest: (request) => ({ ...request, path: `/bench/item?id=${n++ % KEYS}` }) },
      { setupRequest: (request) => ({ ...request, path: `${NO_STORE_PATH}item?id=${n++}` }) },
      { setupRequest: (request) => ({ ...request, path: `${FLAKY_PATH}item?id=${n++ % KEYS}` }) },
    ],
  });
  return { requests: result['2xx'], rps: result['2xx'] / result.duration, errors: result.errors + result.timeouts, non2xx: result.non2xx };
}

function scrape(url: string): void {
  http.get(`${url}/metrics`, (res) => res.resume()).on('error', () => undefined);
}

async function counters(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const found: Record<string, number> = {};
  for (const name of COUNTERS) {
    const line = text.split('\n').find((l) => l.startsWith(`proxy_balancer_${name} `) || l.startsWith(`proxy_balancer_${name}{`));
    found[name] = line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return found;
}

async function reading(server: SoakServer, phase: number, figures: Pick<SoakPhase, 'requests' | 'rps' | 'errors' | 'non2xx'>): Promise<SoakPhase> {
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the last responses and their bookkeeping finish
  const { afterGc, rss } = await server.heap();
  const { heapUsed, heapTotal, external, arrayBuffers } = afterGc!;
  return { phase, ...figures, heapUsed, heapTotal, external, arrayBuffers, rss };
}

/** Runs the soak: a warm-up, then `phases` phases, reading the server's memory after each. Starts its own server and backends unless given `running`. */
export async function soak(options: SoakOptions, running?: SoakServer): Promise<SoakResult> {
  const progress = options.progress ?? (() => undefined);
  const backends = running === undefined ? await startBackends() : undefined;
  const spawned = backends === undefined ? undefined : await spawnServer('lib-soak', backends.urls, { cpu: options.cpu, nodeArgs: ['--expose-gc'] });
  const server = (running ?? spawned)!;
  const scraper = setInterval(scrape, 1000, server.url);
  const warmup = Math.min(options.warmup ?? 3, options.phaseDuration);
  try {
    progress(`soak: warm-up ${warmup} s, then ${options.phases} phases × ${options.phaseDuration} s, ${options.connections} connections`);
    const phases = [await reading(server, 0, await load(server, options.connections, warmup))];
    for (let phase = 1; phase <= options.phases; phase++) {
      progress(`soak: phase ${phase}/${options.phases}`);
      phases.push(await reading(server, phase, await load(server, options.connections, options.phaseDuration)));
    }
    const first = phases[1]!;
    const last = phases.at(-1)!;
    const growth = last.heapUsed - first.heapUsed;
    const allowed = Math.max(GROWTH_SHARE * first.heapUsed, GROWTH_BYTES);
    return {
      phaseDuration: options.phaseDuration,
      connections: options.connections,
      phases,
      growth,
      allowed,
      flat: growth <= allowed,
      counters: await counters(server.url),
    };
  } finally {
    clearInterval(scraper);
    await spawned?.close();
    await backends?.close();
  }
}

export function printSoak(result: SoakResult): void {
  const mb = (bytes: number): string => (bytes / MB).toFixed(1);
  console.log(
    `\nsoak: proxy-balancer on node:http with every feature on (cache, metrics, rate limit, health checks every 1 s, retries, least connections); ` +
      `${result.phases.length - 1} phases × ${result.phaseDuration} s, ${result.connections} connections; memory after a forced GC`,
  );
  console.log('  phase        req/s    2xx    non-2xx  errors   heap used   heap total   external   RSS');
  for (const p of result.phases) {
    console.log(
      `  ${(p.phase === 0 ? 'warm-up' : String(p.phase)).padEnd(8)} ${p.rps.toFixed(0).padStart(8)} ${String(p.requests).padStart(8)} ${String(p.non2xx).padStart(8)} ${String(p.errors).padStart(7)}` +
        `  ${mb(p.heapUsed).padStart(7)} MB  ${mb(p.heapTotal).padStart(7)} MB  ${mb(p.external).padStart(6)} MB  ${mb(p.rss).padStart(6)} MB`,
    );
  }
  console.log(
    `  counters at the end: ${Object.entries(result.counters)
      .map(([name, n]) => `${name.replace(/_total$/, '')} ${n}`)
      .join(', ')}`,
  );
  console.log(
    `  heap after GC, last phase vs first: ${result.growth >= 0 ? '+' : ''}${mb(result.growth)} MB (allowed +${mb(result.allowed)} MB: max(10%, 5 MB)): ${result.flat ? 'flat' : 'NOT FLAT'}`,
  );
}
