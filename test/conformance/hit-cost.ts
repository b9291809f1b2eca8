/**
 * The per-hit cost of the policy decision, ours vs http-cache-semantics, on one stored 200 with
 * Vary, ETag and eight header fields: deciding it is fresh and producing the header fields to
 * send. Memory-store case (the policy object kept live) and Redis case (rebuilt from JSON).
 *
 *   node --expose-gc --import tsx test/conformance/hit-cost.ts
 */
import type { IncomingHttpHeaders } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import CachePolicy from 'http-cache-semantics';
import { NO_DIRECTIVES } from '../../lib/cache/directives.js';
import { usability } from '../../lib/cache/policy.js';
import type { CachedResponse } from '../../lib/cache/store.js';

const now = Date.now();
const responseHeaders: IncomingHttpHeaders = {
  'cache-control': 'public, max-age=600',
  'content-type': 'application/json',
  'content-length': '512',
  date: new Date(now).toUTCString(),
  etag: '"abc"',
  vary: 'accept-encoding',
  'x-request-id': 'r1',
  server: 'origin',
};
const request = { url: '/items/1', method: 'GET', headers: { host: 'shop.example', 'accept-encoding': 'gzip', accept: '*/*' } };

const entry: CachedResponse = {
  status: 200,
  headers: Object.entries(responseHeaders).flat() as string[],
  body: Buffer.alloc(512),
  requestTime: now,
  responseTime: now,
  date: now,
  ageValue: 0,
  freshness: 600_000,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  noCache: false,
  mustRevalidate: false,
  etag: '"abc"',
  lastModified: undefined,
  varyValues: undefined,
};
const policy = new CachePolicy(request, { status: 200, headers: responseHeaders }, { shared: true });
const serialised = JSON.stringify(policy.toObject());

let sink = 0;
const cases: Record<string, () => void> = {
  ours: () => {
    const { use, age } = usability(entry, NO_DIRECTIVES, Date.now());
    const headers = entry.headers.slice();
    headers.push('age', String(Math.floor(age / 1000)));
    sink += use === 'fresh' ? headers.length : 0;
  },
  'http-cache-semantics (live object)': () => {
    const { response } = policy.evaluateRequest(request);
    sink += response === undefined ? 0 : Object.keys(response.headers).length;
  },
  'http-cache-semantics (from JSON)': () => {
    const live = CachePolicy.fromObject(JSON.parse(serialised));
    const { response } = live.evaluateRequest(request);
    sink += response === undefined ? 0 : Object.keys(response.headers).length;
  },
};

let scavenges = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) scavenges++;
}).observe({ entryTypes: ['gc'] });

const N = 300_000;
for (const [name, run] of Object.entries(cases)) {
  for (let i = 0; i < 20_000; i++) run();
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 50));
  scavenges = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) run();
  const ns = Number(process.hrtime.bigint() - start) / N;
  await new Promise((resolve) => setTimeout(resolve, 50));
  console.log(`${name.padEnd(36)} ${ns.toFixed(0).padStart(6)} ns/hit   ${scavenges} minor GCs per ${N / 1000}k hits`);
}
if (sink === 0) console.log('');
