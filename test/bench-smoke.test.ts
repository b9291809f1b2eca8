import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { startBackends, type Backends } from './bench/backends.js';
import { hasH2load, measure, spawnServer, type ServerProcess } from './bench/harness.js';
import { memoryBench } from './bench/memory.js';
import { soak } from './bench/soak.js';
import { DEFAULT_PATH, VARIANTS } from './bench/variants.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { available, skipUnless } from './services.js';

// A smoke run of `npm run bench`: every variant briefly, asserting only that it served requests
// without errors, and a short soak. All variants (and the soak's) share one server process here,
// started with --expose-gc for the soak's heap readings, so the run takes seconds.

let backends: Backends;
let servers: ServerProcess;
let redis: RedisServer | undefined;
// The variants with a Redis store run where a redis-server is; the others always.
const running = VARIANTS.filter((v) => !v.redis || available('redis-server'));

before(async () => {
  backends = await startBackends();
  redis = running.some((v) => v.redis) ? await startRedis() : undefined;
  servers = await spawnServer([...running.map((v) => v.id), 'lib-soak'].join(','), backends.urls, {
    nodeArgs: ['--expose-gc'],
    env: redis && { BENCH_REDIS_URL: redis.url },
  });
});

after(async () => {
  await servers?.close();
  await backends?.close();
  await redis?.stop();
});

/** One request to a TLS variant with Node's own client (h2 or HTTPS/1.1): status, protocol and body size. */
async function getOverTls(url: string, h2: boolean): Promise<{ status: number; version: string; bytes: number }> {
  if (!h2) {
    return new Promise((resolve, reject) => {
      https
        .get(`${url}${DEFAULT_PATH}`, { rejectUnauthorized: false, agent: false }, (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => (bytes += chunk.length));
          res.on('end', () => resolve({ status: res.statusCode!, version: res.httpVersion, bytes }));
        })
        .on('error', reject);
    });
  }
  const session = http2.connect(url, { rejectUnauthorized: false });
  try {
    return await new Promise((resolve, reject) => {
      session.on('error', reject);
      const stream = session.request({ ':path': DEFAULT_PATH });
      let status = 0;
      let bytes = 0;
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
      stream.on('end', () => resolve({ status, version: '2', bytes }));
      stream.on('error', reject);
    });
  } finally {
    session.close();
  }
}

for (const variant of VARIANTS) {
  test(`bench variant ${variant.id} (${variant.label}) serves without errors`, { skip: variant.redis ? skipUnless('redis-server') : false }, async () => {
    const url = servers.urls[variant.id]!;
    const tls = variant.load !== undefined && variant.load !== 'autocannon';
    if (tls) {
      const got = await getOverTls(url, variant.load === 'h2load-h2');
      assert.deepEqual(got, { status: 200, version: variant.load === 'h2load-h2' ? '2' : '1.1', bytes: 1024 });
      if (!hasH2load) return; // the load itself needs h2load (apt-get install nghttp2-client)
    }
    const result = await measure({ url, usage: servers.usage }, { connections: 4, duration: 0.2, path: variant.path, load: variant.load });
    // Served at all, without errors: throughput is the benchmark's business, not a test's.
    assert.ok(result.requests > 0, `${variant.id}: no 2xx response`);
    assert.equal(result.errors, 0, `${variant.id}: connection errors`);
    assert.equal(result.timeouts, 0, `${variant.id}: timeouts`);
    assert.equal(result.non2xx, 0, `${variant.id}: non-2xx responses`);
    if (tls) assert.ok(result.p99 > 0 && result.p50 <= result.p99, `${variant.id}: latencies from h2load's log`);
  });
}

test('bench memory check streams both ways through the library', async () => {
  const rows = await memoryBench(8 * 1024 * 1024);
  assert.deepEqual(
    rows.map((r) => r.direction),
    ['response', 'upload'],
  );
  for (const row of rows) assert.ok(row.rssPeak > 0 && row.mbPerSecond > 0, JSON.stringify(row));
});

test('bench soak reads the heap after GC each phase, every feature on', async () => {
  const result = await soak({ phases: 2, phaseDuration: 0.3, warmup: 0.3, connections: 4 }, { url: servers.urls['lib-soak']!, heap: servers.heap });
  assert.deepEqual(
    result.phases.map((p) => p.phase),
    [0, 1, 2],
  );
  for (const p of result.phases) {
    assert.ok(p.requests > 0 && p.errors === 0, JSON.stringify(p));
    assert.ok(p.heapUsed > 0 && p.heapUsed < p.rss, JSON.stringify(p));
  }
  assert.equal(result.growth, result.phases[2]!.heapUsed - result.phases[1]!.heapUsed);
  assert.ok(result.counters.cache_hits_total! > 0 && result.counters.cache_misses_total! > 0, JSON.stringify(result.counters));
  assert.equal(result.counters.rate_limited_total, 0);
});
