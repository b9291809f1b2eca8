import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { startBackends, type Backends } from './bench/backends.js';
import { connectionMemory, startHoldBackends } from './bench/connection-memory.js';
import { hasH2load, measure, spawnServer, type ServerProcess } from './bench/harness.js';
import { memoryBench } from './bench/memory.js';
import { sideBySide } from './bench/side-by-side.js';
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
const running = VARIANTS.filter((v) => (!v.redis || available('redis-server')) && !v.h2c);
let h2cBackends: Backends;
let h2cServers: ServerProcess;

before(async () => {
  backends = await startBackends();
  redis = running.some((v) => v.redis) ? await startRedis() : undefined;
  servers = await spawnServer([...running.map((v) => v.id), 'lib-soak'].join(','), backends.urls, {
    nodeArgs: ['--expose-gc'],
    env: redis && { BENCH_REDIS_URL: redis.url },
  });
  h2cBackends = await startBackends({ h2c: true });
  h2cServers = await spawnServer(
    VARIANTS.filter((v) => v.h2c)
      .map((v) => v.id)
      .join(','),
    h2cBackends.urls,
    { nodeArgs: ['--expose-gc'] },
  );
});

after(async () => {
  await servers?.close();
  await backends?.close();
  await h2cServers?.close();
  await h2cBackends?.close();
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
    const from = variant.h2c === true ? h2cServers : servers;
    const url = from.urls[variant.id]!;
    const tls = variant.load !== undefined && variant.load !== 'autocannon';
    if (tls) {
      const got = await getOverTls(url, variant.load === 'h2load-h2');
      assert.deepEqual(got, { status: 200, version: variant.load === 'h2load-h2' ? '2' : '1.1', bytes: 1024 });
      if (!hasH2load) return; // the load itself needs h2load (apt-get install nghttp2-client)
    }
    const result = await measure({ url, usage: from.usage }, { connections: 4, duration: 0.2, path: variant.path, load: variant.load });
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

test('bench:memory reads the server heap per idle connection, per in-flight request and per pooled upstream socket', async () => {
  const holding = await startHoldBackends();
  try {
    const result = await connectionMemory('lib-bare', 100, holding);
    assert.equal(result.idle.count, 100);
    assert.equal(result.inFlight.count, 100);
    // Every held request reached a backend through its own upstream socket, and was answered.
    assert.equal(holding.held(), 0);
    assert.ok(result.pooled.count > 0 && result.pooled.count <= 100, JSON.stringify(result.pooled));
    // Figures of a few kB per connection: a sign error or a missed division would be far off.
    assert.ok(Number.isFinite(result.idle.heapUsed) && Math.abs(result.idle.heapUsed) < 100_000, JSON.stringify(result.idle));
    assert.ok(result.inFlight.heapUsed > 0 && result.inFlight.heapUsed < 100_000, JSON.stringify(result.inFlight));
    assert.ok(result.inFlight.after.heapUsed > result.inFlight.before.heapUsed);
  } finally {
    await holding.close();
  }
});

test('bench side-by-side table puts instruction ratios beside CPU, req/s and p99 ratios of the same variants', () => {
  const timed = [
    { id: 'minimal', label: 'minimal', rounds: [{ rps: 1000, p99: 2, cpuPerRequest: 100, systemPerRequest: 50 }] },
    { id: 'lib-bare', label: 'lib', rounds: [{ rps: 500, p99: 5, cpuPerRequest: 300, systemPerRequest: 75 }] },
    { id: 'fastify', label: 'fastify', rounds: [{ rps: 800, p99: 3, cpuPerRequest: 150 }] },
  ];
  const counted = [
    { label: 'minimal', variant: 'minimal', median: 600_000, min: 590_000, max: 610_000, noJit: { median: 300_000, min: 300_000, max: 300_000 } },
    { label: 'lib-bare', variant: 'lib-bare', median: 900_000, min: 880_000, max: 910_000, noJit: { median: 450_000, min: 440_000, max: 460_000 } },
  ];
  const lines = sideBySide(timed, counted);
  const lib = lines.find((l) => l.startsWith('lib-bare'))!.split(/\s{2,}/);
  // instr × 1.50, w/o JIT × 1.50, sys 75 µs, CPU × 3.00, user × 4.50 (225 / 50), user ÷ instr 3.00, time × 2.00, p99 × 2.50
  assert.deepEqual([lib[2], lib[3], lib[5], lib[6], lib[7], lib[8], lib[10], lib[12]], ['1.50', '1.50', '75.0', '3.00', '4.50', '3.00', '2.00', '2.50']);
  assert.equal(lib[1], '900 (880–910)');
  assert.ok(!lines.some((l) => l.startsWith('fastify')), 'only variants both runs measured');
});
