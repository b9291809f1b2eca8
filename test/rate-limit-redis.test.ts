import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { loadBalance, redisRateLimitStore, type LoadBalanceOptions } from 'proxy-balancer';
import { backend, closeAll, listen, request, type TestServer } from './helpers.js';
import { startRedisWithClient } from './redis-server.js';
import { skipUnless } from './services.js';

// Against a real redis-server (spawned on an ephemeral port, or REDIS_URL's with keys under a per-file prefix).
describe('Redis rate-limit store', { skip: skipUnless('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedisWithClient>>;
  let client: Redis;

  before(async () => {
    redis = await startRedisWithClient();
    client = redis.client;
  });

  after(() => redis.stop());

  async function balancer(options: Omit<LoadBalanceOptions, 'targets'>): Promise<{ up: TestServer; front: TestServer; close(): Promise<void> }> {
    const up = await backend('a');
    const lb = loadBalance({ targets: [up.url], ...options });
    const front = await listen(lb);
    return { up, front, close: async () => (await lb.close(), await closeAll(front, up)) };
  }

  test('takes are atomic: 60 concurrent takes on a 10-token bucket allow exactly 10', async () => {
    const store = redisRateLimitStore(client, { prefix: `${redis.prefix}atomic:`, timeout: 5000 });
    const bucket = { capacity: 10, refillPerMs: 10 / 60_000 };
    const results = await Promise.all(Array.from({ length: 60 }, () => store.take('k', 1, Date.now(), bucket)));
    assert.equal(results.filter((r) => r.allowed).length, 10);
    const refused = results.find((r) => !r.allowed)!;
    assert.equal(refused.remaining, 0);
    assert.ok(refused.resetMs > 0 && refused.resetMs <= 6000, `wait ${refused.resetMs} ms for one token at 10/min`);
  });

  test('idle keys expire once their bucket would be full again', async () => {
    const store = redisRateLimitStore(client, { prefix: `${redis.prefix}ttl:` });
    await store.take('k', 1, Date.now(), { capacity: 5, refillPerMs: 1 / 1000 });
    const ttl = await client.pttl(`${redis.prefix}ttl:k`);
    assert.ok(ttl > 0 && ttl <= 1000, `pttl ${ttl}`);
  });

  test('falls back to EVAL when the server lost its script cache', async () => {
    const store = redisRateLimitStore(client, { prefix: `${redis.prefix}noscript:` });
    const bucket = { capacity: 2, refillPerMs: 1 / 60_000 };
    assert.equal((await store.take('k', 1, Date.now(), bucket)).allowed, true);
    // Flushes the whole server's script cache (also on a shared REDIS_URL server): other users just fall back to EVAL once.
    await client.script('FLUSH');
    assert.equal((await store.take('k', 1, Date.now(), bucket)).remaining, 0);
  });

  test('two balancer instances sharing Redis share one limit per client', async () => {
    const a = await balancer({ rateLimit: { limit: 3, store: redisRateLimitStore(client, { prefix: `${redis.prefix}shared:` }) } });
    const b = await balancer({ rateLimit: { limit: 3, store: redisRateLimitStore(client, { prefix: `${redis.prefix}shared:` }) } });
    try {
      const statuses = [];
      for (const front of [a.front, b.front, a.front, b.front, a.front]) statuses.push((await request(`${front.url}/`)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      assert.equal(a.up.hits + b.up.hits, 3);
      const refused = await request(`${b.front.url}/`);
      assert.equal(refused.headers['ratelimit-policy'], '3;w=60');
      assert.ok(Number(refused.headers['retry-after']) >= 1);
    } finally {
      await closeAll(a, b);
    }
  });

  test('Redis unreachable: failOpen (default) lets requests through, failOpen: false answers 503', async () => {
    const broken = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    const open = await balancer({ rateLimit: { limit: 1, store: redisRateLimitStore(broken) } });
    const closed = await balancer({ rateLimit: { limit: 1, store: redisRateLimitStore(broken), failOpen: false } });
    try {
      assert.equal((await request(`${open.front.url}/`)).status, 200);
      assert.equal((await request(`${open.front.url}/`)).status, 200);
      const refused = await request(`${closed.front.url}/`);
      assert.equal(refused.status, 503);
      assert.equal(refused.body, 'Service Unavailable\n', 'nothing about Redis in the answer');
      assert.equal(closed.up.hits, 0);
    } finally {
      // The refused connection ends the client by itself (retryStrategy: null); disconnect() would leave a 2 s timer.
      if (broken.status !== 'end') await new Promise((resolve) => broken.once('end', resolve));
      await closeAll(open, closed);
    }
  });
});
