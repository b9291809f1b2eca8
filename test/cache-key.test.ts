import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import { loadBalance, redisStore, responseCache, type CacheStore, type LoadBalancer, type PathRewrite } from 'proxy-balancer';
import { front, raw } from './abuse/harness.js';
import { closeAll, listen, request, type TestServer, cacheOutcome } from './helpers.js';
import { startRedisWithClient } from './redis-server.js';
import { skipUnless } from './services.js';

/** A service answering its own name and the path it saw, fresh for a minute, counting requests. */
async function service(name: string): Promise<TestServer & { paths: string[] }> {
  const paths: string[] = [];
  const server = await listen((req, res) => {
    paths.push(req.url ?? '');
    res.setHeader('cache-control', 'max-age=60');
    res.end(`${name} ${req.url}`);
  });
  return Object.assign(server, { paths });
}

type Mount = (users: LoadBalancer, orders: LoadBalancer) => http.RequestListener;

const frameworks: Record<string, Mount> = {
  'Express 4': (users, orders) => express4().use('/users', users).use('/orders', orders) as unknown as http.RequestListener,
  'Express 5': (users, orders) => express5().use('/users', users).use('/orders', orders) as unknown as http.RequestListener,
  Connect: (users, orders) => connect().use('/users', users).use('/orders', orders) as unknown as http.RequestListener,
  // Bare node:http has no mount path: each balancer strips its prefix with pathRewrite instead.
  'node:http': (users, orders) => (req: IncomingMessage, res: ServerResponse) => (req.url?.startsWith('/users') ? users(req, res) : orders(req, res)),
};

/**
 * Two balancers mounted at /users and /orders sharing one cache: the cache key is the URL the
 * client asked for (RFC 9111 §2), so /orders/1 is never answered with the users service's /1.
 */
async function checkSharedCache(mount: Mount, store: CacheStore | undefined, rewrite: boolean, bare: boolean): Promise<void> {
  const [usersSvc, ordersSvc] = await Promise.all([service('users'), service('orders')]);
  const cache = responseCache(store === undefined ? {} : { store });
  // With pathRewrite the services see /v1/...; under bare node:http the rewrite also strips the prefix.
  const rewriteOf = (prefix: string): PathRewrite | undefined => (bare ? { [prefix]: rewrite ? '/v1' : '/' } : rewrite ? { '/': '/v1' } : undefined);
  const users = loadBalance({ targets: [usersSvc.url], cache, pathRewrite: rewriteOf('/users') });
  const orders = loadBalance({ targets: [ordersSvc.url], cache, pathRewrite: rewriteOf('/orders') });
  const front = await listen(mount(users, orders));
  const upstreamPath = rewrite ? '/v1/1' : '/1';
  try {
    const u1 = await request(`${front.url}/users/1`);
    assert.equal(u1.body, `users ${upstreamPath}`);
    assert.equal(cacheOutcome(u1.headers), 'MISS');
    const o1 = await request(`${front.url}/orders/1`);
    assert.equal(o1.body, `orders ${upstreamPath}`, 'the orders balancer answers /orders/1, not the cached users /1');
    assert.equal(cacheOutcome(o1.headers), 'MISS');
    const u2 = await request(`${front.url}/users/1`);
    const o2 = await request(`${front.url}/orders/1`);
    assert.equal(u2.body, `users ${upstreamPath}`);
    assert.equal(cacheOutcome(u2.headers), 'HIT');
    assert.equal(o2.body, `orders ${upstreamPath}`);
    assert.equal(cacheOutcome(o2.headers), 'HIT');
    assert.deepEqual(usersSvc.paths, [upstreamPath]);
    assert.deepEqual(ordersSvc.paths, [upstreamPath]);
    // purge(url) takes the URL as the client addressed it.
    assert.equal(await cache.purge(`${front.url}/orders/1`), 1);
    const o3 = await request(`${front.url}/orders/1`);
    assert.equal(cacheOutcome(o3.headers), 'MISS');
    assert.equal(cacheOutcome((await request(`${front.url}/users/1`)).headers), 'HIT', 'purging /orders/1 left /users/1 alone');
    assert.deepEqual(ordersSvc.paths, [upstreamPath, upstreamPath]);
    assert.deepEqual(usersSvc.paths, [upstreamPath]);
  } finally {
    await Promise.all([users.close(), orders.close()]);
    await closeAll(front, usersSvc, ordersSvc);
  }
}

describe('cache key: the URL the client asked for (memory store)', () => {
  for (const [name, mount] of Object.entries(frameworks)) {
    const bare = name === 'node:http';
    if (!bare) test(`${name}: /users and /orders balancers share one cache without cross-serving`, () => checkSharedCache(mount, undefined, false, bare));
    test(`${name} with pathRewrite: /users and /orders balancers share one cache without cross-serving`, () => checkSharedCache(mount, undefined, true, bare));
  }

  test('an absolute-form request target is keyed by its path and query, like the origin-form one', async () => {
    const svc = await service('svc');
    const cache = responseCache();
    const lb = loadBalance({ targets: [svc.url], cache });
    const front = await listen(lb);
    try {
      await request(`${front.url}/a?x=1`);
      const absolute = await new Promise<string>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: front.port, path: `${front.url}/a?x=1`, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(String(cacheOutcome(res.headers))));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(absolute, 'HIT');
      assert.deepEqual(svc.paths, ['/a?x=1']);
    } finally {
      await lb.close();
      await closeAll(front, svc);
    }
  });
});

describe('cache key: the URL the client asked for (Redis store)', { skip: skipUnless('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedisWithClient>>;
  before(async () => {
    redis = await startRedisWithClient();
  });
  after(() => redis.stop());

  for (const [name, mount] of Object.entries(frameworks)) {
    const bare = name === 'node:http';
    if (!bare)
      test(`${name}: two balancers sharing one Redis store do not cross-serve`, () =>
        checkSharedCache(mount, redisStore(redis.client, { prefix: `${name}:` }), false, bare));
    test(`${name} with pathRewrite: two balancers sharing one Redis store do not cross-serve`, () =>
      checkSharedCache(mount, redisStore(redis.client, { prefix: `${name}:rw:` }), true, bare));
  }
});

/** `<cache outcome> <body>` of a raw HTTP/1.1 reply. */
function cacheAndBody(text: string): string {
  const field = /^cache-status: (.*)$/im.exec(text)?.[1];
  const status = field === undefined ? 'none' : cacheOutcome({ 'cache-status': field.trim() });
  return `${status} ${text.slice(text.indexOf('\r\n\r\n') + 4)}`;
}

describe('cache key: Host and path cannot run into each other', () => {
  /** An origin answering the path it saw, fresh for a minute, whatever the Host. */
  const pathOrigin = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('cache-control', 'max-age=60');
    res.end(`path ${req.url}`);
  };
  const get = (port: number, host: string, path: string) => raw(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`).then((r) => r.text);

  // `Host: h/static` + `/app.js` and `Host: h` + `/static/app.js` used to make the same key, so
  // either request could store the answer the other one then got.
  const fronts: Record<string, () => Promise<{ port: number; close(): Promise<void> }>> = {
    'through the balancer': async () => {
      const origin = await listen(pathOrigin);
      const lb = loadBalance({ targets: [origin.url], cache: responseCache() });
      const server = await front(lb);
      return { port: server.port, close: async () => (await lb.close(), await closeAll(server, origin)) };
    },
    // responseCache() in front of a handler of your own: no front-door Host check on the way.
    'standalone (wrap)': async () => {
      const server = await front(responseCache().wrap(pathOrigin));
      return server;
    },
  };

  for (const [name, start] of Object.entries(fronts)) {
    test(`${name}: an odd Host first never answers the clean request`, async () => {
      const server = await start();
      try {
        const odd = await get(server.port, 'h/static', '/app.js');
        assert.doesNotMatch(cacheAndBody(odd), /^HIT /);
        assert.equal(cacheAndBody(await get(server.port, 'h', '/static/app.js')), 'MISS path /static/app.js');
        assert.equal(cacheAndBody(await get(server.port, 'h', '/static/app.js')), 'HIT path /static/app.js', 'the clean entry is cached');
      } finally {
        await server.close();
      }
    });

    test(`${name}: the clean request first never answers the odd Host`, async () => {
      const server = await start();
      try {
        assert.equal(cacheAndBody(await get(server.port, 'h', '/static/app.js')), 'MISS path /static/app.js');
        const odd = cacheAndBody(await get(server.port, 'h/static', '/app.js'));
        assert.doesNotMatch(odd, /^HIT /);
        assert.doesNotMatch(odd, /static/);
      } finally {
        await server.close();
      }
    });
  }

  test('purge(url) still finds the entry of the URL (and only that one)', async () => {
    const cache = responseCache();
    const server = await front(cache.wrap(pathOrigin));
    try {
      await get(server.port, 'h', '/static/app.js');
      await get(server.port, 'h/static', '/app.js');
      assert.equal(await cache.purge('http://h/static/app.js'), 1);
      assert.equal(cacheAndBody(await get(server.port, 'h', '/static/app.js')), 'MISS path /static/app.js');
      assert.match(cacheAndBody(await get(server.port, 'h/static', '/app.js')), /^HIT /, 'the odd-Host entry was not the one purged');
      assert.equal(await cache.purge({ prefix: 'http://h/static/' }), 1);
      assert.equal(cacheAndBody(await get(server.port, 'h', '/static/app.js')), 'MISS path /static/app.js');
    } finally {
      await server.close();
    }
  });
});
