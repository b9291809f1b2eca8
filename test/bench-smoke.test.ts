import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBackends, type Backends } from './bench/backends.js';
import { measure, spawnServer, type ServerProcess } from './bench/harness.js';
import { memoryBench } from './bench/memory.js';
import { VARIANTS } from './bench/variants.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { available, skipUnless } from './services.js';

// A smoke run of `npm run bench`: every variant briefly, asserting only that it served requests
// without errors. All variants share one server process here so the run takes seconds.

let backends: Backends;
let servers: ServerProcess;
let redis: RedisServer | undefined;
// The variants with a Redis store run where a redis-server is; the others always.
const running = VARIANTS.filter((v) => !v.redis || available('redis-server'));

before(async () => {
  backends = await startBackends();
  redis = running.some((v) => v.redis) ? await startRedis() : undefined;
  servers = await spawnServer(running.map((v) => v.id).join(','), backends.urls, { env: redis && { BENCH_REDIS_URL: redis.url } });
});

after(async () => {
  await servers?.close();
  await backends?.close();
  await redis?.stop();
});

for (const variant of VARIANTS) {
  test(`bench variant ${variant.id} (${variant.label}) serves without errors`, { skip: variant.redis ? skipUnless('redis-server') : false }, async () => {
    const url = servers.urls[variant.id]!;
    const result = await measure({ url, usage: servers.usage }, { connections: 4, duration: 0.2 });
    // Served at all, without errors: throughput is the benchmark's business, not a test's.
    assert.ok(result.requests > 0, `${variant.id}: no 2xx response`);
    assert.equal(result.errors, 0, `${variant.id}: connection errors`);
    assert.equal(result.timeouts, 0, `${variant.id}: timeouts`);
    assert.equal(result.non2xx, 0, `${variant.id}: non-2xx responses`);
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
