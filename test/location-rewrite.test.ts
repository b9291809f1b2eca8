import assert from 'node:assert/strict';
import type { RequestListener } from 'node:http';
import { after, before, describe, test } from 'node:test';
import connect from 'connect';
import express from 'express';
import { loadBalance, type LoadBalanceOptions, type LoadBalancer } from 'proxy-balancer';
import { closeAll, listen, request, type TestServer } from './helpers.js';

// The backend answers /<anything>?to=<value> with a 302 to <value> (and the same Content-Location);
// "SELF" in the value stands for the backend's own origin.
describe('Location and Content-Location with pathRewrite undone', () => {
  let backend: TestServer;
  const seen: string[] = [];
  before(async () => {
    backend = await listen((req, res) => {
      seen.push(req.url ?? '');
      const to = (new URL(req.url ?? '/', 'http://x').searchParams.get('to') ?? '/').replace('SELF', backend.url);
      res.writeHead(302, { location: to, 'content-location': to });
      res.end();
    });
  });
  after(() => closeAll(backend));

  async function front(build: (lb: LoadBalancer) => RequestListener, options: Omit<LoadBalanceOptions, 'targets'>, target = backend.url) {
    const lb = loadBalance({ targets: [target], ...options });
    const server = await listen(build(lb));
    return {
      async redirect(path: string, to: string): Promise<{ location: string | undefined; contentLocation: string | undefined }> {
        const reply = await request(`${server.url}${path}?to=${encodeURIComponent(to)}`, { headers: { host: 'shop.example' } });
        assert.equal(reply.status, 302, reply.body);
        return { location: reply.headers.location, contentLocation: reply.headers['content-location'] as string | undefined };
      },
      close: async () => {
        await lb.close();
        await server.close();
      },
    };
  }

  const strip = { pathRewrite: { '^/api': '' } };

  test('Express mount + pathRewrite strip: path-absolute and absolute values come back under /shop/api', async () => {
    const t = await front((lb) => express().use('/shop', lb) as unknown as RequestListener, strip);
    try {
      seen.length = 0;
      assert.deepEqual(await t.redirect('/shop/api/cart', '/login'), { location: '/shop/api/login', contentLocation: '/shop/api/login' });
      assert.equal(seen[0], '/cart?to=%2Flogin', 'the backend saw the prefix stripped');
      assert.equal((await t.redirect('/shop/api/cart', '/login?next=/cart#top')).location, '/shop/api/login?next=/cart#top');
      assert.equal((await t.redirect('/shop/api/cart', '/')).location, '/shop/api/');
      assert.equal((await t.redirect('/shop/api/cart', 'SELF/login')).location, 'http://shop.example/shop/api/login');
      assert.equal((await t.redirect('/shop/api/cart', 'SELF')).location, 'http://shop.example/shop/api/');
    } finally {
      await t.close();
    }
  });

  test('relative-path values, other hosts and network-path references are left alone', async () => {
    const t = await front((lb) => express().use('/shop', lb) as unknown as RequestListener, strip);
    try {
      // Resolved by the client against /shop/api/dir/page, these already land under the public prefix.
      assert.equal((await t.redirect('/shop/api/dir/page', 'login')).location, 'login');
      assert.equal((await t.redirect('/shop/api/dir/page', '../login')).location, '../login');
      assert.equal((await t.redirect('/shop/api/dir/page', '?page=2')).location, '?page=2');
      assert.equal((await t.redirect('/shop/api/x', '//evil.example/login')).location, '//evil.example/login');
      assert.equal((await t.redirect('/shop/api/x', '/\\evil.example/login')).location, '/\\evil.example/login');
      assert.equal((await t.redirect('/shop/api/x', 'https://elsewhere.example/login')).location, 'https://elsewhere.example/login');
    } finally {
      await t.close();
    }
  });

  test('a bare server with pathRewrite strip, and Connect mounted without one', async () => {
    const bare = await front((lb) => lb, strip);
    const mounted = await front((lb) => connect().use('/app', lb) as unknown as RequestListener, {});
    try {
      assert.equal((await bare.redirect('/api/cart', '/login')).location, '/api/login');
      assert.equal((await mounted.redirect('/app/cart', '/login')).location, '/app/login');
    } finally {
      await bare.close();
      await mounted.close();
    }
  });

  test('a mapped prefix is undone only for values under what the rule sends to', async () => {
    const t = await front((lb) => express().use('/shop', lb) as unknown as RequestListener, { pathRewrite: { '/api': '/internal/v2' } });
    try {
      assert.equal((await t.redirect('/shop/api/cart', '/internal/v2/login')).location, '/shop/api/login');
      assert.equal((await t.redirect('/shop/api/cart', '/internal/v2')).location, '/shop/api/');
      assert.equal((await t.redirect('/shop/api/cart', '/internal/v2x')).location, '/shop/internal/v2x');
      assert.equal((await t.redirect('/shop/api/cart', '/other')).location, '/shop/other');
    } finally {
      await t.close();
    }
  });

  test("a rule naming the mount path (app.use('/api', lb), http-proxy-middleware style) is undone the same way", async () => {
    const stripping = await front((lb) => express().use('/api', lb) as unknown as RequestListener, strip);
    const mapped = await front((lb) => express().use('/api', lb) as unknown as RequestListener, { pathRewrite: { '/api': '/internal/v2' } });
    try {
      seen.length = 0;
      assert.deepEqual(await stripping.redirect('/api/cart', '/login'), { location: '/api/login', contentLocation: '/api/login' });
      assert.equal(seen[0], '/cart?to=%2Flogin');
      assert.equal((await mapped.redirect('/api/cart', '/internal/v2/login')).location, '/api/login');
      assert.equal(seen[1], '/internal/v2/cart?to=%2Finternal%2Fv2%2Flogin');
      assert.equal((await mapped.redirect('/api/cart', 'SELF/internal/v2')).location, 'http://shop.example/api/');
    } finally {
      await stripping.close();
      await mapped.close();
    }
  });

  test('a target with a path: values under it lose it, values outside it are not the target and stay', async () => {
    const t = await front((lb) => express().use('/shop', lb) as unknown as RequestListener, strip, `${backend.url}/v2`);
    try {
      seen.length = 0;
      assert.equal((await t.redirect('/shop/api/cart', '/v2/login')).location, '/shop/api/login');
      assert.equal(seen[0]?.startsWith('/v2/cart?'), true);
      assert.equal((await t.redirect('/shop/api/cart', '/v2')).location, '/shop/api/');
      assert.equal((await t.redirect('/shop/api/cart', '/v2?x=1')).location, '/shop/api/?x=1');
      assert.equal((await t.redirect('/shop/api/cart', '/v20/login')).location, '/v20/login');
      assert.equal((await t.redirect('/shop/api/cart', '/login')).location, '/login');
      assert.equal((await t.redirect('/shop/api/cart', 'SELF/v2/login')).location, 'http://shop.example/shop/api/login');
    } finally {
      await t.close();
    }
  });

  test('rewriteLocation: false leaves every value as the backend sent it', async () => {
    const t = await front((lb) => express().use('/shop', lb) as unknown as RequestListener, { ...strip, rewriteLocation: false });
    try {
      assert.equal((await t.redirect('/shop/api/cart', '/login')).location, '/login');
      assert.equal((await t.redirect('/shop/api/cart', 'SELF/login')).location, `${backend.url}/login`);
    } finally {
      await t.close();
    }
  });
});
