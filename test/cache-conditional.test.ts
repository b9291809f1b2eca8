import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachedOrigin, httpDate, type CachedOrigin } from './cache-origin.js';
import { rawRequest, waitFor, cacheOutcome } from './helpers.js';

const LAST_MODIFIED = 'Sun, 06 Nov 1994 08:49:37 GMT';

describe('conditional requests the cache sends (RFC 9111 §4.3.1)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  /** Fresh for `maxAge` s, ETag "v1" and a Last-Modified, varying on X-Tenant; 304 when the validators match. */
  const validated = (path: string, cacheControl: string): string =>
    c.route(path, (req, res) => {
      res.setHeader('cache-control', cacheControl);
      res.setHeader('etag', '"v1"');
      res.setHeader('last-modified', LAST_MODIFIED);
      res.setHeader('vary', 'X-Tenant');
      if (req.headers['if-none-match'] === '"v1"') {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.end(`body for ${req.headers['x-tenant']}`);
    });

  test('a revalidation carries the stored validators and the request headers Vary nominated', async () => {
    const path = validated('/cond-vary', 'max-age=1');
    await c.get(path, { 'x-tenant': 'acme' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const again = await c.get(path, { 'x-tenant': 'acme' });
    assert.equal(again.status, 200);
    assert.equal(again.body, 'body for acme');
    assert.equal(cacheOutcome(again.headers), 'REVALIDATED');
    const revalidation = c.seen(path)[1]!;
    assert.equal(revalidation.headers['if-none-match'], '"v1"');
    assert.equal(revalidation.headers['if-modified-since'], LAST_MODIFIED);
    assert.equal(revalidation.headers['x-tenant'], 'acme');
    assert.equal(c.hits(path), 2);
  });

  test('a background revalidation (stale-while-revalidate) carries them too', async () => {
    const path = validated('/cond-vary-background', 'max-age=1, stale-while-revalidate=60');
    await c.get(path, { 'x-tenant': 'globex' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(cacheOutcome((await c.get(path, { 'x-tenant': 'globex' })).headers), 'STALE');
    await waitFor(() => c.hits(path) === 2);
    const refresh = c.seen(path)[1]!;
    assert.equal(refresh.headers['if-none-match'], '"v1"');
    assert.equal(refresh.headers['if-modified-since'], LAST_MODIFIED);
    assert.equal(refresh.headers['x-tenant'], 'globex');
  });

  test("the client's own validators are not what revalidates the entry, and it still gets its 304", async () => {
    const path = validated('/cond-client-validators', 'max-age=1');
    await c.get(path, { 'x-tenant': 'a' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const answer = await c.get(path, { 'x-tenant': 'a', 'if-none-match': '"v1"' });
    assert.equal(answer.status, 304);
    assert.equal(answer.headers.etag, '"v1"');
    assert.equal(c.seen(path)[1]!.headers['if-none-match'], '"v1"');
  });

  test('without a stored response, the client’s conditional goes upstream as is and its 304 is relayed', async () => {
    const path = validated('/cond-forwarded', 'max-age=60');
    const answer = await c.get(path, { 'if-none-match': '"v1"' });
    assert.equal(answer.status, 304);
    assert.equal(c.seen(path)[0]!.headers['if-none-match'], '"v1"');
    assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS', 'a 304 is not stored');
  });
});

describe('conditional requests the cache answers (RFC 9111 §4.3.2, RFC 9110 §13)', () => {
  let c: CachedOrigin;
  const date = httpDate(-10);
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  const stored = async (path: string, fields: Record<string, string>): Promise<string> => {
    c.route(path, (_req, res) => {
      res.setHeader('cache-control', 'max-age=600');
      for (const [name, value] of Object.entries(fields)) res.setHeader(name, value);
      res.end('full body');
    });
    await c.get(path);
    return path;
  };

  for (const [name, list] of [
    ['first', '"abcdef", "1234", "5678"'],
    ['middle', '"1234", "abcdef", "5678"'],
    ['last', '"1234", "5678", "abcdef"'],
    ['weak against strong', 'W/"abcdef"'],
    ['star', '*'],
  ]) {
    test(`If-None-Match with the stored tag ${name} (${list}) gets 304 with the ETag`, async () => {
      const path = await stored(`/inm-${name.replace(/\W/g, '-')}`, { etag: '"abcdef"' });
      const answer = await c.get(path, { 'if-none-match': list });
      assert.equal(answer.status, 304);
      assert.equal(answer.headers.etag, '"abcdef"');
      assert.equal(cacheOutcome(answer.headers), 'HIT');
      assert.equal(answer.body, '');
      assert.equal(c.hits(path), 1);
    });
  }

  test('a weak stored ETag matches its strong form; a tag with a comma inside is one tag', async () => {
    const weak = await stored('/inm-weak-stored', { etag: 'W/"abc"' });
    assert.equal((await c.get(weak, { 'if-none-match': '"abc"' })).status, 304);
    const comma = await stored('/inm-comma', { etag: '"a,b"' });
    assert.equal((await c.get(comma, { 'if-none-match': '"x", "a,b"' })).status, 304);
    assert.equal((await c.get(comma, { 'if-none-match': '"a", "b"' })).status, 200);
  });

  test('If-None-Match without the stored tag gets the full response; it wins over a matching If-Modified-Since', async () => {
    const path = await stored('/inm-no-match', { etag: '"abcdef"', 'last-modified': LAST_MODIFIED });
    const answer = await c.get(path, { 'if-none-match': '"other"', 'if-modified-since': LAST_MODIFIED });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'full body');
  });

  test('If-Modified-Since against Last-Modified: equal or later is 304, earlier is 200', async () => {
    const path = await stored('/ims-lm', { 'last-modified': LAST_MODIFIED });
    assert.equal((await c.get(path, { 'if-modified-since': LAST_MODIFIED })).status, 304);
    assert.equal((await c.get(path, { 'if-modified-since': 'Mon, 07 Nov 1994 08:49:37 GMT' })).status, 304);
    assert.equal((await c.get(path, { 'if-modified-since': 'Sat, 05 Nov 1994 08:49:37 GMT' })).status, 200);
    assert.equal(c.hits(path), 1);
  });

  test('If-Modified-Since against a response without Last-Modified compares with its Date (§4.3.2)', async () => {
    const path = await stored('/ims-no-lm', { date });
    const notModified = await c.get(path, { 'if-modified-since': date });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.date, date);
    assert.equal((await c.get(path, { 'if-modified-since': httpDate(-3600) })).status, 200);
    assert.equal(c.hits(path), 1);
  });
});

describe('the status line matches the status', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  test('a revalidated entry is answered HTTP/1.1 200 OK, a client 304 is 304 Not Modified', async () => {
    const path = c.route('/status-line', (req, res) => {
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('etag', '"s1"');
      if (req.headers['if-none-match'] === '"s1"') {
        res.writeHead(304, 'Not Modified');
        res.end();
        return;
      }
      res.end('line');
    });
    await c.get(path);
    const revalidated = await rawRequest(c.front.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${c.front.port}\r\nConnection: close\r\n\r\n`);
    assert.match(revalidated, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(revalidated, /\r\ncache-status: proxy-balancer; fwd=stale; fwd-status=304\r\n/i);
    const conditional = await rawRequest(
      c.front.port,
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${c.front.port}\r\nIf-None-Match: "s1"\r\nConnection: close\r\n\r\n`,
    );
    assert.match(conditional, /^HTTP\/1\.1 304 Not Modified\r\n/);
    assert.equal(c.hits(path), 3);
  });
});
