import assert from 'node:assert/strict';
import type { RequestListener } from 'node:http';
import { after, before, describe, test } from 'node:test';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import { loadBalance, type LoadBalanceOptions, type LoadBalancer } from 'proxy-balancer';
import { closeAll, listen, request, type TestServer } from './helpers.js';

interface Echo {
  url: string;
  headers: Record<string, string | undefined>;
}

// Each framework mounts the balancer at `mount`; Express also nests it in a sub-app mounted at /v1.
const frameworks: Record<string, (mount: string, lb: LoadBalancer) => RequestListener> = {
  'Express 4': (mount, lb) => express4().use(mount, lb).use('/v1', express4().use(mount, lb)) as unknown as RequestListener,
  'Express 5': (mount, lb) => express5().use(mount, lb).use('/v1', express5().use(mount, lb)) as unknown as RequestListener,
  Connect: (mount, lb) => connect().use(mount, lb).use('/v1', connect().use(mount, lb)) as unknown as RequestListener,
};

describe('X-Forwarded-Prefix', () => {
  let upstream: TestServer;
  before(async () => {
    // Echoes every request's URL and headers.
    upstream = await listen((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
  });
  after(() => closeAll(upstream));

  async function through(build: (lb: LoadBalancer) => RequestListener, options: Omit<LoadBalanceOptions, 'targets'> = {}) {
    const lb = loadBalance({ targets: [upstream.url], ...options });
    const front = await listen(build(lb));
    return {
      async echo(path: string, headers: Record<string, string> = {}): Promise<Echo> {
        const reply = await request(`${front.url}${path}`, { headers });
        assert.equal(reply.status, 200, `${path}: ${reply.body}`);
        return JSON.parse(reply.body) as Echo;
      },
      close: async () => {
        await lb.close();
        await front.close();
      },
    };
  }

  for (const [name, mountIn] of Object.entries(frameworks)) {
    describe(name, () => {
      test('the stripped mount path is sent, nested mounts included; the query is not part of it', async () => {
        const t = await through((lb) => mountIn('/users', lb));
        try {
          const direct = await t.echo('/users/echo/7?x=/a/b');
          assert.equal(direct.url, '/echo/7?x=/a/b');
          assert.equal(direct.headers['x-forwarded-prefix'], '/users');
          const nested = await t.echo('/v1/users/echo/7');
          assert.equal(nested.url, '/echo/7');
          assert.equal(nested.headers['x-forwarded-prefix'], '/v1/users');
        } finally {
          await t.close();
        }
      });

      test("pathRewrite's public prefix follows the mount path, whatever the rule maps to", async () => {
        const t = await through((lb) => mountIn('/users', lb), { pathRewrite: { '^/api': '/echo', '/same': '/same', '/public/echo': '/echo' } });
        try {
          const mapped = await t.echo('/users/api/7');
          assert.equal(mapped.url, '/echo/7');
          assert.equal(mapped.headers['x-forwarded-prefix'], '/users/api');
          assert.equal((await t.echo('/v1/users/api/7')).headers['x-forwarded-prefix'], '/v1/users/api');
          assert.equal((await t.echo('/users/public/echo/7')).headers['x-forwarded-prefix'], '/users/public', 'only the part no longer seen');
          const same = await t.echo('/users/same/7');
          assert.equal(same.url, '/same/7');
          assert.equal(same.headers['x-forwarded-prefix'], '/users', 'a rule mapping a prefix to itself strips nothing');
        } finally {
          await t.close();
        }
      });
    });
  }

  test('mounted nowhere and without pathRewrite: no header, and a client-sent one is dropped', async () => {
    const t = await through((lb) => lb);
    try {
      const plain = await t.echo('/echo/x');
      assert.equal(plain.headers['x-forwarded-prefix'], undefined);
      const spoofed = await t.echo('/echo/x', { 'x-forwarded-prefix': '/evil' });
      assert.equal(spoofed.headers['x-forwarded-prefix'], undefined, 'an untrusted peer may not set it');
    } finally {
      await t.close();
    }
  });

  test('an untrusted peer’s prefix is replaced by ours', async () => {
    const t = await through((lb) => express5().use('/users', lb) as unknown as RequestListener);
    try {
      assert.equal((await t.echo('/users/echo/x', { 'x-forwarded-prefix': '/evil' })).headers['x-forwarded-prefix'], '/users');
    } finally {
      await t.close();
    }
  });

  test('a trusted peer’s prefix (one value or a list of hops) comes first, ours after it; without ours it is kept', async () => {
    const mounted = await through((lb) => connect().use('/users', lb) as unknown as RequestListener, { trustProxy: 'loopback' });
    const bare = await through((lb) => lb, { trustProxy: 'loopback' });
    try {
      assert.equal((await mounted.echo('/users/echo/x', { 'x-forwarded-prefix': '/edge' })).headers['x-forwarded-prefix'], '/edge/users');
      assert.equal((await mounted.echo('/users/echo/x', { 'x-forwarded-prefix': '/edge/, /shop' })).headers['x-forwarded-prefix'], '/edge/shop/users');
      assert.equal((await mounted.echo('/users/echo/x')).headers['x-forwarded-prefix'], '/users');
      assert.equal((await bare.echo('/echo/x', { 'x-forwarded-prefix': '/edge' })).headers['x-forwarded-prefix'], '/edge');
    } finally {
      await mounted.close();
      await bare.close();
    }
  });

  test('a pathRewrite function strips nothing we can name: only the mount path is sent', async () => {
    const t = await through((lb) => connect().use('/users', lb) as unknown as RequestListener, {
      pathRewrite: (path) => path.replace(/^\/api/, '/echo'),
    });
    try {
      const echo = await t.echo('/users/api/7');
      assert.equal(echo.url, '/echo/7');
      assert.equal(echo.headers['x-forwarded-prefix'], '/users');
    } finally {
      await t.close();
    }
  });

  test('xForwarded: false sends none of its own and leaves the incoming header alone', async () => {
    const t = await through((lb) => express5().use('/users', lb) as unknown as RequestListener, { xForwarded: false });
    try {
      assert.equal((await t.echo('/users/echo/x')).headers['x-forwarded-prefix'], undefined);
      assert.equal((await t.echo('/users/echo/x', { 'x-forwarded-prefix': '/in' })).headers['x-forwarded-prefix'], '/in');
    } finally {
      await t.close();
    }
  });

  test('redirects to the target come back under the mount path with pathRewrite undone (Connect and Express alike)', async () => {
    let self = '';
    const redirecting = await listen((req, res) => {
      res.writeHead(302, { location: `${self}${req.url === '/internal/v2/cart' ? '/internal/v2/login?next=cart' : '/login'}` });
      res.end();
    });
    self = redirecting.url;
    const strip = loadBalance({ targets: [redirecting.url], pathRewrite: { '^/api': '' } });
    const mapped = loadBalance({ targets: [redirecting.url], pathRewrite: { '/api': '/internal/v2' } });
    const fronts = await Promise.all([
      listen(connect().use('/shop', strip) as unknown as RequestListener),
      listen(express5().use('/shop', strip) as unknown as RequestListener),
      listen(connect().use('/shop', mapped) as unknown as RequestListener),
      listen(express4().use('/shop', mapped) as unknown as RequestListener),
    ]);
    const location = async (front: TestServer, path: string) => (await request(`${front.url}${path}`, { headers: { host: 'shop.example' } })).headers.location;
    try {
      for (const front of fronts.slice(0, 2)) assert.equal(await location(front, '/shop/api/cart'), 'http://shop.example/shop/api/login');
      for (const front of fronts.slice(2)) {
        assert.equal(await location(front, '/shop/api/cart'), 'http://shop.example/shop/api/login?next=cart');
        // A location outside what the rule sends to cannot be undone: it only gets the mount path.
        assert.equal(await location(front, '/shop/api/other'), 'http://shop.example/shop/login');
      }
    } finally {
      await strip.close();
      await mapped.close();
      await closeAll(...fronts, redirecting);
    }
  });
});
