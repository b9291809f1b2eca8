import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { responseCache } from 'proxy-balancer';
import { cachedOrigin, httpDate, type CachedOrigin } from './cache-origin.js';
import { listen, type TestServer, cacheOutcome } from './helpers.js';

describe('which statuses are stored (RFC 9111 §3, §4.2.2)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  const answering = (path: string, status: number, fields: Record<string, string>): string =>
    c.route(path, (_req, res) => {
      res.statusCode = status;
      for (const [name, value] of Object.entries(fields)) res.setHeader(name, value);
      res.end(status === 204 ? undefined : `status ${status}`);
    });

  for (const status of [200, 203, 204, 299, 301, 302, 303, 307, 308, 400, 404, 410, 499, 500, 502, 503, 504, 599]) {
    test(`a ${status} with explicit freshness is stored and served as ${status}`, async () => {
      const path = answering(`/explicit-${status}`, status, { 'cache-control': 'max-age=60' });
      await c.get(path);
      const hit = await c.get(path);
      assert.equal(hit.status, status);
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.equal(hit.body, status === 204 ? '' : `status ${status}`);
      assert.equal(c.hits(path), 1);
    });
  }

  for (const status of [200, 404, 500, 503]) {
    test(`a ${status} already expired (Expires in the past) is not reused`, async () => {
      const path = answering(`/expired-${status}`, status, { expires: httpDate(-60), date: httpDate(0) });
      await c.get(path);
      assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS');
      assert.equal(c.hits(path), 2);
    });
  }

  const lastModified = httpDate(-10 * 86400);
  for (const [status, stored] of [
    [200, true],
    [203, true],
    [204, true],
    [404, true],
    [405, true],
    [410, true],
    [414, true],
    [501, true],
    [201, false],
    [202, false],
    [403, false],
    [502, false],
    [503, false],
    [504, false],
    [599, false],
  ] as Array<[number, boolean]>) {
    test(`heuristic freshness (Last-Modified only): a ${status} is ${stored ? '' : 'not '}stored`, async () => {
      const path = answering(`/heuristic-${status}`, status, { 'last-modified': lastModified, date: httpDate(0) });
      await c.get(path);
      assert.equal(cacheOutcome((await c.get(path)).headers), stored ? 'HIT' : 'MISS');
      assert.equal(c.hits(path), stored ? 1 : 2);
    });
  }

  test('heuristic freshness applies to any status when the response says public', async () => {
    const path = answering('/heuristic-599-public', 599, { 'last-modified': lastModified, 'cache-control': 'public' });
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'HIT');
  });

  test('a 302 without explicit freshness is not stored', async () => {
    const path = answering('/redirect-plain', 302, { location: '/elsewhere' });
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS');
  });

  test('must-understand (§5.2.2.3): no-store is set aside for a status this cache implements, and nothing else is stored', async () => {
    const understood = answering('/must-understand-200', 200, { 'cache-control': 'max-age=60, no-store, must-understand' });
    const unknown = answering('/must-understand-299', 299, { 'cache-control': 'max-age=60, no-store, must-understand' });
    const unknownFresh = answering('/must-understand-299-fresh', 299, { 'cache-control': 'max-age=60, must-understand' });
    const plainNoStore = answering('/no-store-200', 200, { 'cache-control': 'max-age=60, no-store' });
    for (const path of [understood, unknown, unknownFresh, plainNoStore]) await c.get(path);
    assert.equal(cacheOutcome((await c.get(understood)).headers), 'HIT');
    assert.equal(cacheOutcome((await c.get(unknown)).headers), 'MISS');
    assert.equal(cacheOutcome((await c.get(unknownFresh)).headers), 'MISS');
    assert.equal(cacheOutcome((await c.get(plainNoStore)).headers), 'MISS');
  });

  test('Set-Cookie: not stored by default, stored with storeSetCookie', async () => {
    const path = answering('/cookie', 200, { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' });
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS');
    const storing = await cachedOrigin({ storeSetCookie: true });
    try {
      const stored = storing.route('/cookie', (_req, res) => {
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('set-cookie', 'a=b');
        res.end('cookie');
      });
      await storing.get(stored);
      const hit = await storing.get(stored);
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.deepEqual(hit.headers['set-cookie'], ['a=b']);
    } finally {
      await storing.close();
    }
  });
});

describe('interim responses (RFC 9110 §15.2) pass through and are never stored', () => {
  let server: TestServer;
  let calls = 0;
  before(async () => {
    const cache = responseCache();
    server = await listen(
      cache.wrap((_req, res) => {
        calls++;
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.setHeader('cache-control', 'max-age=60');
        res.end('final');
      }),
    );
  });
  after(() => server.close());

  const get = (path: string) =>
    new Promise<{ status: number; interim: number[]; body: string; cache: string }>((resolve, reject) => {
      const interim: number[] = [];
      const req = http.get(`${server.url}${path}`, { agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, interim, body, cache: String(cacheOutcome(res.headers)) }));
      });
      req.on('information', (info) => interim.push(info.statusCode));
      req.on('error', reject);
    });

  test('a 103 reaches the client, the final 200 is what is stored, a hit sends no 103', async () => {
    const first = await get('/hints');
    assert.deepEqual(first.interim, [103]);
    assert.equal(first.status, 200);
    assert.equal(first.body, 'final');
    const second = await get('/hints');
    assert.equal(second.cache, 'HIT');
    assert.equal(second.status, 200);
    assert.deepEqual(second.interim, []);
    assert.equal(calls, 1);
  });
});

describe('storePost: a POST response answering later GETs (RFC 9110 §9.3.3)', () => {
  const poster = (c: CachedOrigin, path: string, fields: (url: string) => Record<string, string>): string =>
    c.route(path, (req, res) => {
      if (req.method === 'POST') {
        req.resume();
        req.on('end', () => {
          for (const [name, value] of Object.entries(fields(`${c.front.url}${path}`))) res.setHeader(name, value);
          res.end('made by POST');
        });
        return;
      }
      res.setHeader('cache-control', 'max-age=60');
      res.end('made by GET');
    });

  test('off by default: the POST only invalidates', async () => {
    const c = await cachedOrigin();
    try {
      const path = poster(c, '/post-default', (url) => ({ 'cache-control': 'max-age=60', 'content-location': url }));
      await c.get(path, {}, 'POST', 'x');
      const get = await c.get(path);
      assert.equal(get.body, 'made by GET');
      assert.equal(cacheOutcome(get.headers), 'MISS');
    } finally {
      await c.close();
    }
  });

  test('with storePost, explicit freshness and Content-Location equal to the URL (absolute or relative) answer the next GET', async () => {
    const c = await cachedOrigin({ storePost: true });
    try {
      const absolute = poster(c, '/post-absolute', (url) => ({ 'cache-control': 'max-age=60', 'content-location': url }));
      const relative = poster(c, '/post-relative', () => ({ expires: httpDate(60), 'content-location': 'post-relative' }));
      for (const path of [absolute, relative]) {
        assert.equal((await c.get(path, {}, 'POST', 'x')).body, 'made by POST');
        const get = await c.get(path);
        assert.equal(get.body, 'made by POST', path);
        assert.equal(cacheOutcome(get.headers), 'HIT', path);
        assert.equal(c.hits(path), 1);
      }
    } finally {
      await c.close();
    }
  });

  test('with storePost, no explicit freshness or another Content-Location stores nothing', async () => {
    const c = await cachedOrigin({ storePost: true });
    try {
      const stale = poster(c, '/post-no-freshness', (url) => ({ 'content-location': url, 'last-modified': httpDate(-86400) }));
      const other = poster(c, '/post-elsewhere', () => ({ 'cache-control': 'max-age=60', 'content-location': '/somewhere-else' }));
      for (const path of [stale, other]) {
        await c.get(path, {}, 'POST', 'x');
        assert.equal((await c.get(path)).body, 'made by GET', path);
      }
    } finally {
      await c.close();
    }
  });

  test('an invalid storePost throws a TypeError naming the option', () => {
    assert.throws(() => responseCache({ storePost: 'yes' as never }), /options\.storePost must be a boolean/);
  });
});
