import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { responseCache } from 'proxy-balancer';
import { cachedOrigin, type CachedOrigin } from './cache-origin.js';
import { delay, listen, request } from './helpers.js';

/** A reply's Cache-Status with the ttl of our member (the last) replaced by `ttl=N`: it counts down. */
function member(headers: Record<string, unknown>): string {
  return String(headers['cache-status']).replace(/ttl=-?\d+$/, 'ttl=N');
}

/** The ttl of our member (the last). */
function ttlOf(headers: Record<string, unknown>): number {
  return Number(/; ttl=(-?\d+)$/.exec(String(headers['cache-status']))?.[1]);
}

describe('Cache-Status (RFC 9211): what the cache did and why, by default', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin({ maxEntrySize: 1024 });
  });
  after(() => c.close());

  const answering = (path: string, fields: Record<string, string>, body = 'body', status = 200): string =>
    c.route(path, (_req, res) => {
      res.statusCode = status;
      for (const [name, value] of Object.entries(fields)) res.setHeader(name, value);
      res.end(body);
    });

  test('a stored miss, then a hit with its remaining freshness; no X-Cache unless asked for', async () => {
    const path = answering('/fresh', { 'cache-control': 'max-age=60' });
    const miss = await c.get(path);
    assert.equal(miss.headers['cache-status'], 'proxy-balancer; fwd=uri-miss; stored');
    assert.equal(miss.headers['x-cache'], undefined);
    const hit = await c.get(path);
    assert.equal(member(hit.headers), 'proxy-balancer; hit; ttl=N');
    assert.ok(ttlOf(hit.headers) >= 58 && ttlOf(hit.headers) <= 60, String(hit.headers['cache-status']));
    assert.equal(hit.headers['x-cache'], undefined);
  });

  for (const [what, fields, body, status, detail] of [
    ['no-store', { 'cache-control': 'no-store' }, 'body', 200, 'no-store'],
    ['private', { 'cache-control': 'private, max-age=60' }, 'body', 200, 'private'],
    ['Set-Cookie', { 'cache-control': 'max-age=60', 'set-cookie': 'sid=1' }, 'body', 200, 'set-cookie'],
    ['a Content-Length past maxEntrySize', { 'cache-control': 'max-age=60' }, 'x'.repeat(2048), 200, 'too-large'],
    ['a 302 without freshness information', {}, 'moved', 302, 'no-freshness'],
    ['max-age=0 and no validator to revalidate it with', { 'cache-control': 'max-age=0' }, 'body', 200, 'no-validator'],
    ['Vary: *', { 'cache-control': 'max-age=60', vary: '*' }, 'body', 200, 'vary-star'],
  ] as Array<[string, Record<string, string>, string, number, string]>) {
    test(`a response not stored says why: ${what} (detail=${detail}), and says it again on the next request`, async () => {
      const path = answering(`/not-stored-${detail}`, fields, body, status);
      for (let i = 0; i < 2; i++) {
        const reply = await c.get(path);
        assert.equal(reply.status, status);
        assert.equal(reply.headers['cache-status'], `proxy-balancer; fwd=uri-miss; detail=${detail}`);
      }
      assert.equal(c.hits(path), 2);
    });
  }

  test('HEAD misses are relayed, not stored (detail=head)', async () => {
    const path = answering('/head', { 'cache-control': 'max-age=60' });
    const reply = await c.get(path, {}, 'HEAD');
    assert.equal(reply.headers['cache-status'], 'proxy-balancer; fwd=uri-miss; detail=head');
  });

  test('a URL stored for other request fields is a vary-miss, not a uri-miss', async () => {
    const path = c.route('/vary', (req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('vary', 'accept-language');
      res.end(`hello ${req.headers['accept-language']}`);
    });
    assert.equal((await c.get(path, { 'accept-language': 'en' })).headers['cache-status'], 'proxy-balancer; fwd=uri-miss; stored');
    assert.equal((await c.get(path, { 'accept-language': 'fr' })).headers['cache-status'], 'proxy-balancer; fwd=vary-miss; stored');
    assert.equal(member((await c.get(path, { 'accept-language': 'fr' })).headers), 'proxy-balancer; hit; ttl=N');
  });

  test('revalidation: fwd=stale with the 304 as fwd-status; a fresh entry the request refused is fwd=request', async () => {
    const path = c.route('/revalidate', (req, res) => {
      res.setHeader('etag', '"v1"');
      res.setHeader('cache-control', 'no-cache');
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304);
        res.end();
        return;
      }
      res.end('v1');
    });
    assert.equal((await c.get(path)).headers['cache-status'], 'proxy-balancer; fwd=uri-miss; stored');
    const revalidated = await c.get(path);
    assert.equal(revalidated.status, 200);
    assert.equal(revalidated.body, 'v1');
    assert.equal(revalidated.headers['cache-status'], 'proxy-balancer; fwd=stale; fwd-status=304');

    const fresh = answering('/request-no-cache', { 'cache-control': 'max-age=60' });
    await c.get(fresh);
    assert.equal((await c.get(fresh, { 'cache-control': 'no-cache' })).headers['cache-status'], 'proxy-balancer; fwd=request; stored');
  });

  test('requests the cache stays out of: fwd=method for POST, fwd=bypass for a no-store request and a GET with a body', async () => {
    const path = answering('/bypass', { 'cache-control': 'max-age=60' });
    assert.equal((await c.get(path, {}, 'POST', 'form')).headers['cache-status'], 'proxy-balancer; fwd=method');
    assert.equal((await c.get(path, {}, 'OPTIONS')).headers['cache-status'], 'proxy-balancer; fwd=method');
    assert.equal((await c.get(path, { 'cache-control': 'no-store' })).headers['cache-status'], 'proxy-balancer; fwd=bypass; detail=no-store');
    assert.equal((await c.get(path, {}, 'GET', 'a body')).headers['cache-status'], 'proxy-balancer; fwd=bypass; detail=request-body');
    assert.equal((await c.get(path)).headers['cache-status'], 'proxy-balancer; fwd=uri-miss; stored', 'none of them stored anything');
  });

  test("an upstream cache's Cache-Status comes first, ours last (nearest the client), and ours is never stored", async () => {
    const path = answering('/upstream-member', { 'cache-control': 'max-age=60', 'cache-status': 'OriginCache; hit; ttl=100' });
    const miss = await c.get(path);
    assert.equal(miss.headers['cache-status'], 'OriginCache; hit; ttl=100, proxy-balancer; fwd=uri-miss; stored');
    const hit = await c.get(path);
    assert.equal(member(hit.headers), 'OriginCache; hit; ttl=100, proxy-balancer; hit; ttl=N');
    const again = await c.get(path);
    assert.equal(member(again.headers), 'OriginCache; hit; ttl=100, proxy-balancer; hit; ttl=N', 'no member of ours piles up');

    const bypassed = answering('/upstream-member-bypass', { 'cache-status': 'OriginCache; fwd=method' });
    assert.equal((await c.get(bypassed, {}, 'DELETE')).headers['cache-status'], 'OriginCache; fwd=method, proxy-balancer; fwd=method');
  });

  test('concurrent misses: one goes forward and stores, the others are collapsed into it', async () => {
    const path = c.route('/collapse', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      setTimeout(() => res.end('slow'), 150);
    });
    const replies = await Promise.all([c.get(path), c.get(path), c.get(path)]);
    assert.deepEqual(replies.map((r) => r.headers['cache-status']).sort(), [
      'proxy-balancer; fwd=uri-miss; collapsed',
      'proxy-balancer; fwd=uri-miss; collapsed',
      'proxy-balancer; fwd=uri-miss; stored',
    ]);
    assert.equal(c.hits(path), 1);
  });

  test('stale-while-revalidate is a hit with a negative ttl; stale-if-error says the error it stood in for', async () => {
    let broken = false;
    const swr = answering('/swr', { 'cache-control': 'max-age=1, stale-while-revalidate=30' });
    const sie = c.route('/sie', (_req, res) => {
      if (broken) {
        res.statusCode = 503;
        res.end('down');
        return;
      }
      res.setHeader('cache-control', 'max-age=1, stale-if-error=60');
      res.end('good');
    });
    await Promise.all([c.get(swr), c.get(sie)]);
    await delay(1100);
    const stale = await c.get(swr);
    assert.equal(member(stale.headers), 'proxy-balancer; hit; ttl=N');
    assert.ok(ttlOf(stale.headers) < 0, String(stale.headers['cache-status']));
    broken = true;
    const standIn = await c.get(sie);
    assert.equal(standIn.status, 200);
    assert.equal(standIn.body, 'good');
    assert.equal(standIn.headers['cache-status'], 'proxy-balancer; fwd=stale; fwd-status=503');
  });
});

describe('Cache-Status options', () => {
  const origin = (body: string) => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end(body);
  };

  test('cacheStatus names the cache (quoted when not a token); false sends none; header keeps X-Cache', async () => {
    const named = await listen(responseCache({ cacheStatus: 'edge cache 1' }).wrap(origin('named')));
    const token = await listen(responseCache({ cacheStatus: 'cdn.example.com' }).wrap(origin('token')));
    const silent = await listen(responseCache({ cacheStatus: false, header: 'x-cache' }).wrap(origin('silent')));
    try {
      assert.equal((await request(named.url)).headers['cache-status'], '"edge cache 1"; fwd=uri-miss; stored');
      assert.equal(member((await request(named.url)).headers), '"edge cache 1"; hit; ttl=N');
      assert.equal((await request(token.url)).headers['cache-status'], 'cdn.example.com; fwd=uri-miss; stored');
      const first = await request(silent.url);
      const second = await request(silent.url);
      assert.equal(first.headers['cache-status'], undefined);
      assert.equal(second.headers['cache-status'], undefined);
      assert.equal(first.headers['x-cache'], 'MISS');
      assert.equal(second.headers['x-cache'], 'HIT');
    } finally {
      await Promise.all([named.close(), token.close(), silent.close()]);
    }
  });

  test('invalid cacheStatus and header options throw a TypeError naming the option', () => {
    for (const bad of ['', 'caf\u00e9', 'line\nbreak', 42, true]) {
      assert.throws(() => responseCache({ cacheStatus: bad as never }), { name: 'TypeError', message: /options\.cacheStatus/ });
    }
    for (const bad of ['', 'x cache', 'Cache-Status', true]) {
      assert.throws(() => responseCache({ header: bad as never }), { name: 'TypeError', message: /options\.header/ });
    }
  });
});
