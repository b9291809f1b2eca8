import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachedOrigin, type CachedOrigin } from './cache-origin.js';
import { cacheOutcome } from './helpers.js';

/**
 * RFC 9111 §4.4: a non-error response to any method not known to be safe (RFC 9110 §9.2.1: GET,
 * HEAD, OPTIONS and TRACE are) invalidates the target URI and the same-origin Location and
 * Content-Location URIs.
 */
describe('invalidation by unsafe methods (RFC 9111 §4.4)', () => {
  let c: CachedOrigin;
  let version = 0;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  /** A resource fresh for a minute; `method` requests get `status` with the given fields. */
  const resource = (path: string, status = 200, fields: Record<string, string> = {}): string =>
    c.route(path, (req, res) => {
      if (req.method === 'GET' || req.method === 'HEAD') {
        res.setHeader('cache-control', 'max-age=60');
        res.end(`v${++version}`);
        return;
      }
      req.resume();
      req.on('end', () => {
        res.statusCode = status;
        for (const [name, value] of Object.entries(fields)) res.setHeader(name, value);
        res.end('done');
      });
    });

  const cached = async (path: string): Promise<void> => {
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'HIT', `${path} is stored`);
  };

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'M-SEARCH', 'PROPPATCH', 'MKCOL', 'LOCK']) {
    test(`a successful ${method} invalidates the URL`, async () => {
      const path = resource(`/inv-${method}`);
      await cached(path);
      const unsafe = await c.get(path, {}, method, 'abc');
      assert.equal(unsafe.status, 200);
      assert.equal(cacheOutcome(unsafe.headers), 'BYPASS');
      const after = await c.get(path);
      assert.equal(cacheOutcome(after.headers), 'MISS');
      assert.equal(
        c
          .seen(path)
          .map((s) => s.method)
          .join(' '),
        `GET ${method} GET`,
      );
    });
  }

  for (const status of [400, 404, 500, 503]) {
    test(`a ${status} to a POST invalidates nothing`, async () => {
      const path = resource(`/inv-failed-${status}`, status);
      await cached(path);
      assert.equal((await c.get(path, {}, 'POST')).status, status);
      assert.equal(cacheOutcome((await c.get(path)).headers), 'HIT');
      assert.equal(c.hits(path), 2);
    });
  }

  for (const method of ['OPTIONS', 'TRACE']) {
    test(`a safe ${method} invalidates nothing`, async () => {
      const path = resource(`/inv-safe-${method}`);
      await cached(path);
      await c.get(path, {}, method);
      assert.equal(cacheOutcome((await c.get(path)).headers), 'HIT');
    });
  }

  test('Location and Content-Location of the same origin are invalidated, relative ones resolved against the request URL', async () => {
    const target = resource('/inv-items/7');
    const described = resource('/inv-items/7/description');
    const other = resource('/inv-other');
    await Promise.all([cached(target), cached(described), cached(other)]);
    const form = resource('/inv-items/new', 201, { location: `${c.front.url}/inv-items/7`, 'content-location': '7/description' });
    assert.equal((await c.get(form, {}, 'POST')).status, 201);
    assert.equal(cacheOutcome((await c.get(target)).headers), 'MISS', 'Location');
    // Relative to /inv-items/new, "7/description" is /inv-items/7/description.
    assert.equal(cacheOutcome((await c.get(described)).headers), 'MISS', 'Content-Location');
    assert.equal(cacheOutcome((await c.get(other)).headers), 'HIT', 'other URLs stay');
  });

  test('a Location on another origin invalidates nothing there (nor here)', async () => {
    const path = resource('/inv-cross');
    await cached(path);
    const poster = resource('/inv-cross-post', 200, { location: 'http://other.example/inv-cross', 'content-location': 'http://other.example/inv-cross' });
    await c.get(poster, {}, 'POST');
    assert.equal(cacheOutcome((await c.get(path)).headers), 'HIT');
  });

  test('every variant of the URL is invalidated', async () => {
    const path = c.route('/inv-variants', (req, res) => {
      if (req.method !== 'GET') {
        res.end('done');
        return;
      }
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('vary', 'accept-language');
      res.end(`lang ${req.headers['accept-language']}`);
    });
    for (const lang of ['en', 'fr']) {
      await c.get(path, { 'accept-language': lang });
      assert.equal(cacheOutcome((await c.get(path, { 'accept-language': lang })).headers), 'HIT');
    }
    await c.get(path, {}, 'DELETE');
    assert.equal(cacheOutcome((await c.get(path, { 'accept-language': 'en' })).headers), 'MISS');
    assert.equal(cacheOutcome((await c.get(path, { 'accept-language': 'fr' })).headers), 'MISS');
  });
});
