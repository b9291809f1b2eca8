import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { responseCache } from 'proxy-balancer';
import { cachedOrigin, type CachedOrigin } from './cache-origin.js';
import { listen, request, cacheOutcome } from './helpers.js';

describe('header fields stored with a response (RFC 9111 §3.1)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  test('hop-by-hop, Connection-nominated and proxy-specific fields are never stored', async () => {
    const path = c.route('/hop', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('connection', 'x-hop-a, X-Hop-B');
      res.setHeader('x-hop-a', '1');
      res.setHeader('x-hop-b', '2');
      res.setHeader('x-end-to-end', '3');
      res.setHeader('proxy-authenticate', 'Basic realm="p"');
      res.setHeader('proxy-authentication-info', 'nextnonce="x"');
      res.setHeader('keep-alive', 'timeout=5');
      res.end('hop');
    });
    await c.get(path);
    const hit = await c.get(path);
    assert.equal(cacheOutcome(hit.headers), 'HIT');
    assert.equal(hit.headers['x-end-to-end'], '3');
    for (const name of ['x-hop-a', 'x-hop-b', 'proxy-authenticate', 'proxy-authentication-info']) assert.equal(hit.headers[name], undefined, name);
    assert.notEqual(hit.headers['keep-alive'], 'timeout=5');
  });

  test('in front of a plain handler too, the cache drops what Connection nominates', async () => {
    const cache = responseCache();
    let calls = 0;
    const server = await listen(
      cache.wrap((_req, res) => {
        calls++;
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('connection', 'x-hop');
        res.setHeader('x-hop', 'secret');
        res.setHeader('x-kept', 'yes');
        res.end('plain');
      }),
    );
    try {
      await request(`${server.url}/p`);
      const hit = await request(`${server.url}/p`);
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.equal(hit.headers['x-hop'], undefined);
      assert.equal(hit.headers['x-kept'], 'yes');
      assert.equal(calls, 1);
    } finally {
      await server.close();
    }
  });

  test('header values an app set as numbers are read as their text', async () => {
    const cache = responseCache();
    const server = await listen(
      cache.wrap((_req, res) => {
        res.setHeader('cache-control', 'max-age=600');
        res.setHeader('age', 30);
        res.setHeader('cdn-cache-control', 5);
        res.end('numbers');
      }),
    );
    try {
      await request(`${server.url}/n`);
      const hit = await request(`${server.url}/n`);
      assert.equal(cacheOutcome(hit.headers), 'HIT', 'an invalid targeted field (5) is ignored');
      assert.ok(['30', '31'].includes(String(hit.headers.age)), `Age ${hit.headers.age}`);
    } finally {
      await server.close();
    }
  });

  test('qualified no-cache="…" and private="…" keep the named fields out and store the rest', async () => {
    const path = c.route('/qualified', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60, no-cache="X-Secret, X-Other", private="X-User"');
      res.setHeader('x-secret', 's');
      res.setHeader('x-other', 'o');
      res.setHeader('x-user', 'u');
      res.setHeader('x-public', 'p');
      res.end('qualified');
    });
    const miss = await c.get(path);
    assert.equal(miss.headers['x-secret'], 's', 'the miss relays everything');
    const hit = await c.get(path);
    assert.equal(cacheOutcome(hit.headers), 'HIT', 'a qualified no-cache does not force revalidation');
    assert.equal(hit.headers['x-secret'], undefined);
    assert.equal(hit.headers['x-other'], undefined);
    assert.equal(hit.headers['x-user'], undefined);
    assert.equal(hit.headers['x-public'], 'p');
    assert.equal(c.hits(path), 1);
  });
});

describe('stored fields updated by a 304 (RFC 9111 §3.2, §4.3.4)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  test('every field the 304 carries replaces the stored one, Content-Type included; Content-Length and Content-Encoding stay', async () => {
    let round = 0;
    const path = c.route('/update', (req, res) => {
      round++;
      res.setHeader('etag', '"u1"');
      if (req.headers['if-none-match'] === '"u1"') {
        res.setHeader('cache-control', 'max-age=60');
        res.setHeader('x-version', 'B');
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.setHeader('content-encoding', 'gzip');
        res.setHeader('content-length', '999');
        res.writeHead(304);
        res.end();
        return;
      }
      res.setHeader('cache-control', 'max-age=1');
      res.setHeader('x-version', 'A');
      res.setHeader('x-untouched', 'kept');
      res.setHeader('content-type', 'text/plain');
      res.end('twelve bytes');
    });
    await c.get(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const revalidated = await c.get(path);
    assert.equal(cacheOutcome(revalidated.headers), 'REVALIDATED');
    const hit = await c.get(path);
    for (const answer of [revalidated, hit]) {
      assert.equal(answer.status, 200);
      assert.equal(answer.body, 'twelve bytes');
      assert.equal(answer.headers['x-version'], 'B');
      assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(answer.headers['content-length'], '12');
      assert.equal(answer.headers['content-encoding'], undefined);
      assert.equal(answer.headers['x-untouched'], 'kept');
      assert.equal(answer.headers['cache-control'], 'max-age=60');
    }
    assert.equal(cacheOutcome(hit.headers), 'HIT', 'the 304’s max-age=60 made it fresh again');
    assert.equal(round, 2);
  });

  test('a Set-Cookie on the 304 reaches this client and is not stored', async () => {
    const path = c.route('/update-cookie', (req, res) => {
      res.setHeader('cache-control', 'max-age=1');
      res.setHeader('etag', '"c1"');
      if (req.headers['if-none-match'] === '"c1"') {
        res.setHeader('set-cookie', 'session=abc');
        res.writeHead(304);
        res.end();
        return;
      }
      res.end('cookie-less');
    });
    await c.get(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const revalidated = await c.get(path);
    assert.deepEqual(revalidated.headers['set-cookie'], ['session=abc']);
    const hit = await c.get(path);
    assert.equal(cacheOutcome(hit.headers), 'HIT');
    assert.equal(hit.headers['set-cookie'], undefined);
  });

  test('stored fields a 304 omits are kept', async () => {
    const path = c.route('/update-omit', (req, res) => {
      res.setHeader('cache-control', 'max-age=1');
      res.setHeader('last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT');
      if (req.headers['if-modified-since'] !== undefined) {
        res.writeHead(304);
        res.end();
        return;
      }
      res.setHeader('x-only-on-200', 'yes');
      res.end('omit');
    });
    await c.get(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const revalidated = await c.get(path);
    assert.equal(cacheOutcome(revalidated.headers), 'REVALIDATED');
    assert.equal(revalidated.headers['x-only-on-200'], 'yes');
  });
});
