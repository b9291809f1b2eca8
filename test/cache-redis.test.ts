import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { decodeEntry, encodeEntry, loadBalance, redisStore, responseCache, type CachedResponse } from 'proxy-balancer';
import { closeAll, delay, listen, request, type TestServer, cacheOutcome } from './helpers.js';
import { cachedEntry } from './cached-entry.js';
import { startRedisWithClient } from './redis-server.js';
import { skipUnless } from './services.js';

describe('Redis store against a real redis-server', { skip: skipUnless('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedisWithClient>>;
  let client: Redis;

  before(async () => {
    redis = await startRedisWithClient();
    client = redis.client;
  });
  after(() => redis.stop());

  test('entries round-trip with binary bodies, expire by TTL, and purge by prefix', async () => {
    const store = redisStore(client, { prefix: `${redis.prefix}cache:` });
    const body = Buffer.from([0, 1, 2, 10, 13, 255, 0x0a]);
    await store.set('GET http://a/x', cachedEntry(body), 60_000, 100);
    const back = (await store.get('GET http://a/x')) as CachedResponse;
    assert.deepEqual(back.body, body);
    assert.equal(back.etag, '"e"');
    assert.deepEqual(decodeEntry(encodeEntry(back)), back);
    await store.set('GET http://a/short', cachedEntry(body), 50, 100);
    await delay(120);
    assert.equal(await store.get('GET http://a/short'), undefined, 'expired through the Redis TTL');
    await store.set('GET http://a/p/1', cachedEntry(body), 60_000, 100);
    await store.set('GET http://a/p/2', cachedEntry(body), 60_000, 100);
    await store.set('GET http://a/q*', cachedEntry(body), 60_000, 100);
    assert.equal(await store.deletePrefix('GET http://a/p/'), 2);
    assert.ok(await store.get('GET http://a/q*'), 'glob characters in keys are matched literally');
    await store.delete('GET http://a/q*');
    assert.equal(await store.get('GET http://a/q*'), undefined);
  });

  test('two balancers (two app instances) share hits through one Redis', async () => {
    let calls = 0;
    const origin: TestServer = await listen((_req, res) => {
      calls++;
      res.setHeader('cache-control', 'max-age=60');
      res.end(`shared body ${calls}`);
    });
    const one = loadBalance({ targets: [origin.url], cache: responseCache({ store: redisStore(client, { prefix: redis.prefix }) }) });
    const two = loadBalance({ targets: [origin.url], cache: responseCache({ store: redisStore(client, { prefix: redis.prefix }) }) });
    const frontOne = await listen(one);
    const frontTwo = await listen(two);
    try {
      // Same Host for both, as behind one public name.
      const first = await request(`${frontOne.url}/shared`, { headers: { host: 'shop.example' } });
      const second = await request(`${frontTwo.url}/shared`, { headers: { host: 'shop.example' } });
      assert.equal(cacheOutcome(first.headers), 'MISS');
      assert.equal(cacheOutcome(second.headers), 'HIT', 'the other instance hit what the first stored');
      assert.equal(second.body, 'shared body 1');
      assert.equal(calls, 1);
      await two.cache!.purge('http://shop.example/shared');
      assert.equal(
        cacheOutcome((await request(`${frontOne.url}/shared`, { headers: { host: 'shop.example' } })).headers),
        'MISS',
        'a purge on one instance is seen by all',
      );
    } finally {
      await one.close();
      await two.close();
      await closeAll(frontOne, frontTwo, origin);
    }
  });

  test('a Redis outage degrades to misses, never to errors', async () => {
    const broken = new Redis(`redis://127.0.0.1:1`, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    broken.on('error', () => {});
    const origin = await listen((_req, res) => (res.setHeader('cache-control', 'max-age=60'), res.end('ok')));
    const lb = loadBalance({ targets: [origin.url], cache: responseCache({ store: redisStore(broken) }) });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'ok');
    } finally {
      await lb.close();
      broken.disconnect();
      await closeAll(front, origin);
    }
  });
});
