import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Cluster } from 'ioredis';
import { decodeEntry, encodeEntry, loadBalance, redisStore, responseCache, type CachedResponse } from 'proxy-balancer';
import { cachedEntry as entry } from './cached-entry.js';
import { closeAll, delay, listen, request, cacheOutcome } from './helpers.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';
import { skipUnless } from './services.js';

/** How many keys matching `pattern` each master holds. */
async function keysPerMaster(client: Cluster, pattern: string): Promise<number[]> {
  return Promise.all(
    client.nodes('master').map(async (node) => {
      let cursor = '0';
      let count = 0;
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
      return count;
    }),
  );
}

describe('redisStore on a real 3-master Redis Cluster', { skip: skipUnless('redis-cluster') }, () => {
  let cluster: RedisCluster;
  let client: Cluster;

  before(async () => {
    cluster = await startRedisCluster();
    client = await cluster.client();
  });
  after(() => cluster?.stop());

  test('the cluster has three masters', () => {
    assert.equal(client.nodes('master').length, 3);
  });

  test('entries round-trip with binary bodies and expire by TTL', async () => {
    const store = redisStore(client, { prefix: 'rt:' });
    const body = Buffer.from([0, 1, 2, 10, 13, 255, 0x0a, 0xc3, 0x28]);
    await store.set('GET http://a/x', entry(body), 60_000, 100);
    const back = (await store.get('GET http://a/x')) as CachedResponse;
    assert.deepEqual(back.body, body);
    assert.equal(back.etag, '"e"');
    assert.deepEqual(decodeEntry(encodeEntry(back)), back);
    await store.set('GET http://a/short', entry(body), 50, 100);
    assert.ok(await store.get('GET http://a/short'));
    await delay(120);
    assert.equal(await store.get('GET http://a/short'), undefined, 'expired through the Redis TTL');
    assert.equal(await store.delete('GET http://a/x'), true);
    assert.equal(await store.get('GET http://a/x'), undefined);
    assert.equal(await store.delete('GET http://a/x'), false);
  });

  test('a prefix purge scans every master: keys on all three go, others stay', async () => {
    const store = redisStore(client, { prefix: 'pp:' });
    const body = Buffer.from('x');
    for (let i = 0; i < 60; i++) await store.set(`GET http://shop/p/${i}`, entry(body), 60_000, 10);
    await store.set('GET http://shop/q*', entry(body), 60_000, 10);
    await store.set('GET http://shop/other', entry(body), 60_000, 10);
    const spread = await keysPerMaster(client, 'pp:GET http://shop/p/*');
    assert.equal(spread.length, 3);
    assert.ok(
      spread.every((n) => n > 0),
      `keys on every master: ${spread.join(', ')}`,
    );
    assert.equal(await store.deletePrefix('GET http://shop/p/'), 60);
    assert.deepEqual(await keysPerMaster(client, 'pp:GET http://shop/p/*'), [0, 0, 0]);
    assert.ok(await store.get('GET http://shop/q*'), 'glob characters in keys are matched literally');
    assert.ok(await store.get('GET http://shop/other'));
    assert.equal(await store.deletePrefix('GET http://shop/'), 2);
  });

  test('two balancers share hits and purges through the Cluster', async () => {
    let calls = 0;
    const origin = await listen((_req, res) => {
      calls++;
      res.setHeader('cache-control', 'max-age=60');
      res.end(`body ${calls}`);
    });
    const one = loadBalance({ targets: [origin.url], cache: responseCache({ store: redisStore(client, { prefix: 'lb:' }) }) });
    const two = loadBalance({ targets: [origin.url], cache: responseCache({ store: redisStore(client, { prefix: 'lb:' }) }) });
    const frontOne = await listen(one);
    const frontTwo = await listen(two);
    const get = (front: typeof frontOne, path: string) => request(`${front.url}${path}`, { headers: { host: 'shop.example' } });
    try {
      const paths = Array.from({ length: 12 }, (_, i) => `/item/${i}`);
      for (const path of paths) assert.equal(cacheOutcome((await get(frontOne, path)).headers), 'MISS');
      for (const path of paths) assert.equal(cacheOutcome((await get(frontTwo, path)).headers), 'HIT', `${path} hit on the other instance`);
      assert.equal(calls, paths.length);
      assert.ok(
        (await keysPerMaster(client, 'lb:*')).every((n) => n > 0),
        'entries spread over the masters',
      );
      assert.equal(await two.cache!.purge({ prefix: 'http://shop.example/item/' }), paths.length);
      for (const path of paths) assert.equal(cacheOutcome((await get(frontOne, path)).headers), 'MISS', `${path} purged everywhere`);
    } finally {
      await one.close();
      await two.close();
      await closeAll(frontOne, frontTwo, origin);
    }
  });
});
