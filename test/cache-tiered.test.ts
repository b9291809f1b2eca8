import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { performance } from 'node:perf_hooks';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { loadBalance, memoryStore, redisStore, responseCache, tieredStore, type CacheStore, type LoadBalancer, type TieredStore } from 'proxy-balancer';
import { cachedEntry } from './cached-entry.js';
import { closeAll, delay, listen, request, type Reply, type TestServer, cacheOutcome } from './helpers.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { skipUnless } from './services.js';

type Client = Redis | Cluster;

/** Names of the commands a client sends (its subscriber connection is another client, not counted). */
function countCommands(client: Client): string[] {
  const sent: string[] = [];
  const original = client.sendCommand.bind(client) as (...args: unknown[]) => unknown;
  (client as { sendCommand: unknown }).sendCommand = (command: { name: string }, ...rest: unknown[]) => {
    sent.push(command.name);
    return original(command, ...rest);
  };
  return sent;
}

/** A memoryStore that remembers which keys were put in it (the tests stay independent of the key format). */
function watchedL1(): CacheStore & { keys: Set<string>; holds(path?: string): boolean } {
  const store = memoryStore();
  const keys = new Set<string>();
  return {
    ...store,
    keys,
    set(key, entry, ttl, size) {
      keys.add(key);
      return store.set(key, entry, ttl, size);
    },
    /** Whether a key ever put here (one naming `path`, if given) is still served. */
    holds: (path) => [...keys].some((key) => (path === undefined || key.includes(path)) && store.get(key) !== undefined),
  };
}

/** Resolves with performance.now() once `check` holds, polling every turn of the event loop. */
async function until(check: () => boolean, timeout = 5000, what = 'condition'): Promise<number> {
  const end = performance.now() + timeout;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return performance.now();
}

interface Instance {
  lb: LoadBalancer;
  front: TestServer;
  store: TieredStore;
  l1: ReturnType<typeof watchedL1>;
  commands: string[];
  get(path: string, method?: string): Promise<Reply>;
  /** Requests `path` until this instance's L1 holds it (a write announced by another instance may drop a fill). */
  warm(path: string): Promise<void>;
  close(): Promise<void>;
}

/** One app instance: its own client, L1 and balancer, sharing the Redis behind `connect`. */
async function instance(connect: () => Promise<Client>, origin: TestServer, prefix: string, l1MaxTtl?: number): Promise<Instance> {
  const client = await connect();
  const commands = countCommands(client);
  const l1 = watchedL1();
  const store = tieredStore({ l1, l2: redisStore(client, { prefix }), l1MaxTtl });
  await store.ready();
  const lb = loadBalance({ targets: [origin.url], cache: responseCache({ store }) });
  const front = await listen(lb);
  return {
    lb,
    front,
    store,
    l1,
    commands,
    get: (path, method = 'GET') => request(`${front.url}${path}`, { method, headers: { host: 'shop.example' } }),
    warm: async (path) => {
      for (let i = 0; i < 10 && !l1.holds(path); i++) await request(`${front.url}${path}`, { headers: { host: 'shop.example' } });
      assert.ok(l1.holds(path), `${path} in L1`);
    },
    close: async () => {
      await lb.close();
      await store.close();
      await front.close();
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** An origin answering `body <n>` with the given Cache-Control, counting its requests. */
function countingOrigin(cacheControl: string, etag = false): Promise<TestServer & { conditional: number }> {
  const origin = listen((req, res) => {
    if (req.method !== 'GET') return res.end('done');
    if (etag && req.headers['if-none-match'] === '"v"') {
      state.conditional++;
      res.writeHead(304, { 'cache-control': cacheControl, etag: '"v"' });
      return res.end();
    }
    res.setHeader('cache-control', cacheControl);
    if (etag) res.setHeader('etag', '"v"');
    res.end(`body ${state.hits}`);
  }) as Promise<TestServer & { conditional: number }>;
  let state!: TestServer & { conditional: number };
  return origin.then((s) => ((state = Object.assign(s, { conditional: 0 })), state));
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** Bound asserted on each cross-instance invalidation, ms (measured p50 ~1 ms, max ~20 ms on one server and ~150 ms on the Cluster on a loaded 2-core machine). */
const INVALIDATION_BOUND = 500;

const BACKENDS = [
  { name: 'one redis-server', service: 'redis-server' as const },
  { name: 'a 3-master Redis Cluster', service: 'redis-cluster' as const },
];

for (const { name, service } of BACKENDS) {
  describe(`tieredStore over ${name}`, { skip: skipUnless(service) }, () => {
    let stop: () => Promise<void>;
    let connect: () => Promise<Client>;

    before(async () => {
      if (service === 'redis-server') {
        const server: RedisServer = await startRedis();
        connect = async () => {
          const client = new Redis(server.url, { lazyConnect: true });
          await client.connect();
          return client;
        };
        stop = () => server.stop();
      } else {
        const cluster: RedisCluster = await startRedisCluster();
        connect = () => cluster.client();
        stop = () => cluster.stop();
      }
    });
    after(() => stop?.());

    test('L1 hits make no Redis round trip; misses are filled from Redis into L1', async () => {
      const origin = await countingOrigin('max-age=60');
      const a = await instance(connect, origin, 'hit:');
      const b = await instance(connect, origin, 'hit:');
      try {
        const first = await a.get('/item');
        assert.equal(cacheOutcome(first.headers), 'MISS');
        // The store's write and its announcement finish after the response.
        await until(() => a.commands.includes('publish'), 5000, 'the write to be announced');
        a.commands.length = 0;
        const again = await a.get('/item');
        assert.equal(cacheOutcome(again.headers), 'HIT');
        assert.deepEqual(a.commands, [], 'the storing instance hits its L1');

        // The other instance: a miss in its L1 is a hit in Redis, and fills its L1...
        const shared = await b.get('/item');
        assert.equal(cacheOutcome(shared.headers), 'HIT');
        assert.equal(shared.body, 'body 1');
        assert.ok(b.commands.includes('get'), `read from Redis: ${b.commands.join(' ')}`);
        await b.warm('/item');
        // ...after which it hits L1 alone.
        b.commands.length = 0;
        for (let i = 0; i < 5; i++) assert.equal(cacheOutcome((await b.get('/item')).headers), 'HIT');
        assert.deepEqual(b.commands, [], 'five hits, no Redis command');
        assert.equal(origin.hits, 1);
      } finally {
        await a.close();
        await b.close();
        await origin.close();
      }
    });

    test('a purge on one instance reaches the other instance’s L1 through pub/sub (delay measured)', async (t) => {
      const origin = await countingOrigin('max-age=60');
      const a = await instance(connect, origin, 'purge:');
      const b = await instance(connect, origin, 'purge:');
      const delays: number[] = [];
      try {
        for (let i = 0; i < 30; i++) {
          const path = `/p/${i}`;
          assert.equal(cacheOutcome((await a.get(path)).headers), 'MISS');
          await b.warm(path);
          const began = performance.now();
          const purged = a.lb.cache!.purge(`http://shop.example${path}`);
          const gone = until(() => !b.l1.holds(), 5000, 'the purge to reach the other L1');
          assert.equal(await purged, 1);
          delays.push((await gone) - began);
          const after = await b.get(path);
          assert.equal(cacheOutcome(after.headers), 'MISS', 'purged on the other instance too');
          b.l1.keys.clear();
          a.l1.keys.clear();
        }
        const sorted = [...delays].sort((x, y) => x - y);
        t.diagnostic(
          `purge → other L1: p50 ${percentile(sorted, 50).toFixed(2)} ms, p90 ${percentile(sorted, 90).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms over ${sorted.length}`,
        );
        assert.ok(
          sorted.at(-1)! < INVALIDATION_BOUND,
          `every purge reached the other L1 within ${INVALIDATION_BOUND} ms: ${sorted.map((d) => d.toFixed(1)).join(' ')}`,
        );
      } finally {
        await a.close();
        await b.close();
        await origin.close();
      }
    });

    test('an unsafe method through one instance invalidates the other instance’s L1 (delay measured)', async (t) => {
      const origin = await countingOrigin('max-age=60');
      const a = await instance(connect, origin, 'unsafe:');
      const b = await instance(connect, origin, 'unsafe:');
      const delays: number[] = [];
      try {
        for (let i = 0; i < 20; i++) {
          const path = `/u/${i}`;
          await a.get(path);
          await b.warm(path);
          const began = performance.now();
          const posted = a.get(path, 'POST');
          delays.push((await until(() => !b.l1.holds(), 5000, 'the invalidation to reach the other L1')) - began);
          assert.equal((await posted).status, 200);
          assert.equal(cacheOutcome((await b.get(path)).headers), 'MISS');
          b.l1.keys.clear();
          a.l1.keys.clear();
        }
        const sorted = [...delays].sort((x, y) => x - y);
        t.diagnostic(`POST → other L1: p50 ${percentile(sorted, 50).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms over ${sorted.length}`);
        assert.ok(sorted.at(-1)! < INVALIDATION_BOUND, `every invalidation reached the other L1 within ${INVALIDATION_BOUND} ms`);
      } finally {
        await a.close();
        await b.close();
        await origin.close();
      }
    });

    test('a subscriber dropped by Redis empties L1, resubscribes, and receives purges again', async () => {
      const origin = await countingOrigin('max-age=60');
      const a = await instance(connect, origin, 'resub:');
      const b = await instance(connect, origin, 'resub:');
      const admin = await connect();
      try {
        await a.get('/r');
        await b.warm('/r');
        const servers = admin.isCluster ? (admin as Cluster).nodes('all') : [admin as Redis];
        await Promise.all(servers.map((node) => node.client('KILL', 'TYPE', 'pubsub')));
        await until(() => !b.store.live, 2000, 'the subscriber to notice');
        assert.equal(b.l1.holds(), false, 'L1 emptied while nobody listens');
        await until(() => a.store.live && b.store.live, 5000, 'both subscribers to come back');
        await b.warm('/r');
        assert.equal(await a.lb.cache!.purge('http://shop.example/r'), 1);
        await until(() => !b.l1.holds('/r'), INVALIDATION_BOUND, 'the purge to reach the resubscribed instance');
      } finally {
        await admin.quit();
        await a.close();
        await b.close();
        await origin.close();
      }
    });

    test('a prefix purge empties every instance’s L1 under the prefix, on every master', async () => {
      const origin = await countingOrigin('max-age=60');
      const a = await instance(connect, origin, 'prefix:');
      const b = await instance(connect, origin, 'prefix:');
      try {
        const paths = Array.from({ length: 10 }, (_, i) => `/cat/${i}`);
        for (const path of paths) await a.get(path);
        for (const path of paths) await b.warm(path);
        assert.equal(cacheOutcome((await b.get('/other')).headers), 'MISS');
        await b.warm('/other');
        assert.equal(await a.lb.cache!.purge({ prefix: 'http://shop.example/cat/' }), paths.length);
        await until(() => !b.l1.holds('/cat/'), 5000, 'the prefix purge to reach the other L1');
        assert.ok(b.l1.holds('/other'));
        for (const path of paths) assert.equal(cacheOutcome((await b.get(path)).headers), 'MISS');
        assert.equal(cacheOutcome((await b.get('/other')).headers), 'HIT', 'outside the prefix stays');
      } finally {
        await a.close();
        await b.close();
        await origin.close();
      }
    });
  });
}

describe('tieredStore: freshness, lost messages, outages (one redis-server)', { skip: skipUnless('redis-server') }, () => {
  let server: RedisServer;
  const connect = async (options: RedisOptions = {}): Promise<Redis> => {
    const client = new Redis(server.url, { lazyConnect: true, ...options });
    client.on('error', () => {});
    await client.connect();
    return client;
  };

  before(async () => {
    server = await startRedis();
  });
  after(() => server?.stop());

  test('an L1 entry lives no longer than its remaining freshness (Age counted), then comes from L2', async () => {
    const client = await connect();
    const l1 = memoryStore();
    const store = tieredStore({ l1, l2: redisStore(client, { prefix: 'fresh:' }) });
    try {
      await store.ready();
      // 59 s old on arrival with 60 s of freshness: 1 s left, whatever the 60 s store TTL says.
      const old = { ...cachedEntry(Buffer.from('old')), ageValue: 59 };
      await store.set('k-old', old, 60_000, 100);
      await store.set('k-new', cachedEntry(Buffer.from('new')), 60_000, 100);
      const stale = { ...cachedEntry(Buffer.from('stale'), 1000), responseTime: Date.now() - 2000, requestTime: Date.now() - 2000, date: Date.now() - 2000 };
      await store.set('k-stale', stale, 60_000, 100);
      assert.ok(l1.get('k-old'), 'in L1 while fresh');
      assert.equal(l1.get('k-stale'), undefined, 'an entry stored stale never enters L1');
      assert.ok(await store.get('k-stale'), '...but is in L2, for revalidation');
      await delay(1100);
      assert.equal(l1.get('k-old'), undefined, 'gone from L1 once its freshness ran out');
      assert.ok(l1.get('k-new'), 'a fresh one stays');
      assert.ok(await store.get('k-old'), 'still in L2 (its store TTL covers revalidation)');
      assert.equal(l1.get('k-old'), undefined, 'and not filled back into L1 stale');
    } finally {
      await store.close();
      await client.quit();
    }
  });

  test('past max-age the other instance revalidates instead of serving its L1 copy; l1MaxTtl caps L1', async () => {
    // max-age=3: Date has one-second resolution, so the age the cache computes (RFC 9111 §4.2.3)
    // may already be near a second at arrival.
    const origin = await countingOrigin('max-age=3', true);
    const a = await instance(() => connect(), origin, 'maxage:');
    const b = await instance(() => connect(), origin, 'maxage:', 300);
    try {
      assert.equal(cacheOutcome((await a.get('/m')).headers), 'MISS');
      await b.warm('/m');
      const [key] = b.l1.keys;
      await delay(400);
      assert.equal(b.l1.get(key!), undefined, 'l1MaxTtl (300 ms) ended it before its freshness');
      assert.equal(cacheOutcome((await b.get('/m')).headers), 'HIT', 'from L2, still fresh');
      await delay(3100);
      const stale = await b.get('/m');
      assert.equal(cacheOutcome(stale.headers), 'REVALIDATED', 'not served from L1 past its freshness');
      assert.equal(origin.conditional, 1);
      assert.equal(origin.hits, 2);
    } finally {
      await a.close();
      await b.close();
      await origin.close();
    }
  });

  test('a subscriber that loses its connection empties L1 and bypasses it until resubscribed: a purge it missed is not served', async () => {
    const origin = await countingOrigin('max-age=60');
    const a = await instance(() => connect(), origin, 'lost:');
    // B's connections come back only after 300 ms: a purge in between is certain to be missed.
    const b = await instance(() => connect({ retryStrategy: () => 300 }), origin, 'lost:');
    const admin = await connect();
    try {
      await a.get('/l');
      await b.warm('/l');
      await admin.client('KILL', 'TYPE', 'pubsub');
      await until(() => !b.store.live, 2000, 'the subscriber to notice');
      assert.equal(b.l1.holds(), false, 'L1 emptied when the subscription dropped');
      assert.equal(await a.lb.cache!.purge('http://shop.example/l'), 1);
      b.commands.length = 0;
      assert.equal(cacheOutcome((await b.get('/l')).headers), 'MISS', 'no L1 copy of the purged entry');
      assert.ok(b.commands.includes('get'), 'read from Redis meanwhile');
      await until(() => b.store.live, 5000, 'the subscriber to come back');
      b.commands.length = 0;
      await b.warm('/l');
      b.commands.length = 0;
      assert.equal(cacheOutcome((await b.get('/l')).headers), 'HIT');
      assert.deepEqual(b.commands, [], 'L1 serves again once resubscribed');
    } finally {
      await admin.quit();
      await a.close();
      await b.close();
      await origin.close();
    }
  });

  test('Redis down: requests never wait for it; once its circuit opens, L1 alone caches (origin spared); L1 is emptied when Redis is back', async () => {
    const own = await startRedis();
    const origin = await countingOrigin('max-age=60');
    const client = new Redis(own.url, { lazyConnect: true, retryStrategy: () => 100 });
    client.on('error', () => {});
    await client.connect();
    const store = tieredStore({ l2: redisStore(client, { prefix: 'down:', coolDown: 200 }) });
    await store.ready();
    const lb = loadBalance({ targets: [origin.url], cache: responseCache({ store }) });
    const front = await listen(lb);
    const get = () => request(`${front.url}/d`, { headers: { host: 'shop.example' } });
    let again: RedisServer | undefined;
    try {
      await get();
      assert.equal(cacheOutcome((await get()).headers), 'HIT');
      await own.stop();
      await until(() => !store.live && client.status === 'reconnecting', 3000, 'the clients to notice');
      const caches: string[] = [];
      for (let i = 0; i < 8; i++) {
        const began = performance.now();
        const reply = await get();
        assert.equal(reply.status, 200);
        caches.push(String(cacheOutcome(reply.headers)));
        assert.ok(performance.now() - began < 500, 'answered without waiting for Redis retries');
      }
      assert.equal(store.guard.up, false, 'five failures in a row opened the circuit');
      assert.equal(caches[0], 'MISS', 'L1 was emptied when the subscription dropped');
      assert.equal(caches.at(-1), 'HIT', `L1 alone serves while Redis is away: ${caches.join(' ')}`);
      assert.ok(origin.hits < 1 + 8, `the origin got ${origin.hits - 1} of the 8 requests`);
      again = await startRedis(own.port);
      // The open circuit pings Redis after each cool-down (200 ms here): no request is needed to find it back.
      await until(() => store.guard.up && store.live && client.status === 'ready', 5000, 'the store to reconnect');
      const hits = origin.hits;
      assert.equal(cacheOutcome((await get()).headers), 'MISS', 'what L1 kept alone is forgotten; the new Redis is empty');
      assert.equal(cacheOutcome((await get()).headers), 'HIT');
      assert.equal(origin.hits, hits + 1);
    } finally {
      await lb.close();
      await store.close();
      await client.quit().catch(() => client.disconnect());
      await again?.stop();
      await closeAll(front, origin);
    }
  });

  test('invalid options throw TypeErrors naming them', async () => {
    const client = await connect();
    try {
      assert.throws(() => tieredStore({} as never), /tieredStore: options\.l2 must be a CacheStore/);
      assert.throws(() => tieredStore({ l2: memoryStore() }), /tieredStore: options\.redis must be an ioredis client/);
      assert.throws(
        () => tieredStore({ l2: redisStore(client), l1MaxTtl: 0 }),
        /tieredStore: options\.l1MaxTtl must be a positive number of milliseconds, got 0/,
      );
      assert.throws(() => tieredStore({ l2: redisStore(client), channel: '' }), /tieredStore: options\.channel must be a non-empty string/);
      assert.throws(() => tieredStore({ l2: redisStore(client), l1: 'x' as never }), /tieredStore: options\.l1 must be a CacheStore/);
    } finally {
      await client.quit();
    }
  });
});
