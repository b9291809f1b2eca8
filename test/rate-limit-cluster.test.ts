import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Cluster } from 'ioredis';
import { loadBalance, redisRateLimitStore, type LoadBalanceOptions } from 'proxy-balancer';
import { backend, closeAll, listen, request, type TestServer } from './helpers.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';
import { skipUnless } from './services.js';

describe('redisRateLimitStore on a real 3-master Redis Cluster', { skip: skipUnless('redis-cluster') }, () => {
  let cluster: RedisCluster;
  let client: Cluster;

  before(async () => {
    cluster = await startRedisCluster();
    client = await cluster.client();
  });
  after(() => cluster?.stop());

  async function balancer(options: Omit<LoadBalanceOptions, 'targets'>): Promise<{ up: TestServer; front: TestServer; close(): Promise<void> }> {
    const up = await backend('a');
    const lb = loadBalance({ targets: [up.url], ...options });
    const front = await listen(lb);
    return { up, front, close: async () => (await lb.close(), await closeAll(front, up)) };
  }

  test('buckets spread over all masters, and takes stay atomic on each', async () => {
    // 240 takes at once, the first on each master through the EVAL fallback: atomicity is the point
    // here, not the 50 ms deadline a request would have.
    const store = redisRateLimitStore(client, { prefix: 'rl:atomic:', timeout: 5000 });
    const bucket = { capacity: 5, refillPerMs: 5 / 60_000 };
    const keys = Array.from({ length: 12 }, (_, i) => `client-${i}`);
    const results = await Promise.all(
      keys.flatMap((key) => Array.from({ length: 20 }, () => store.take(key, 1, Date.now(), bucket).then((r) => [key, r] as const))),
    );
    for (const key of keys) assert.equal(results.filter(([k, r]) => k === key && r.allowed).length, 5, `${key}: exactly the capacity allowed`);
    const perMaster = await Promise.all(client.nodes('master').map((node) => node.keys('rl:atomic:*').then((k) => k.length)));
    assert.ok(
      perMaster.every((n) => n > 0),
      `buckets on every master: ${perMaster.join(', ')}`,
    );
  });

  test('falls back to EVAL on a master that lost its script cache', async () => {
    const store = redisRateLimitStore(client, { prefix: 'rl:noscript:' });
    const bucket = { capacity: 2, refillPerMs: 1 / 60_000 };
    assert.equal((await store.take('k', 1, Date.now(), bucket)).allowed, true);
    await Promise.all(client.nodes('master').map((node) => node.script('FLUSH')));
    assert.equal((await store.take('k', 1, Date.now(), bucket)).remaining, 0);
  });

  test('two balancers count one limit per client across the Cluster', async () => {
    const a = await balancer({ rateLimit: { limit: 3, store: redisRateLimitStore(client, { prefix: 'rl:shared:' }) } });
    const b = await balancer({ rateLimit: { limit: 3, store: redisRateLimitStore(client, { prefix: 'rl:shared:' }) } });
    try {
      const statuses = [];
      for (const front of [a.front, b.front, a.front, b.front, a.front, b.front]) statuses.push((await request(`${front.url}/`)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
      assert.equal(a.up.hits + b.up.hits, 3);
      const refused = await request(`${b.front.url}/`);
      assert.equal(refused.headers['ratelimit-policy'], '3;w=60');
      assert.ok(Number(refused.headers['retry-after']) >= 1);
    } finally {
      await closeAll(a, b);
    }
  });
});
