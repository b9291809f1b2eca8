import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { responseCache } from 'proxy-balancer';
import { cachedOrigin, httpDate, type CachedOrigin } from './cache-origin.js';
import { cacheOutcome } from './helpers.js';

/**
 * RFC 9213: the first targeted field of the cache's list that is present, non-empty and a valid
 * Structured Fields Dictionary replaces Cache-Control and Expires for this cache; it is relayed
 * unchanged (caches further down may obey it too).
 */
describe('targeted cache control: CDN-Cache-Control (RFC 9213)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  const respond = (name: string, fields: Record<string, string>): string =>
    c.route(`/cdn-${name.replace(/\W/g, '-')}`, (_req, res) => {
      for (const [field, value] of Object.entries(fields)) res.setHeader(field, value);
      res.end(name);
    });
  /** Two requests: whether the second was a hit, and the origin's count. */
  const twice = async (path: string): Promise<[string, number]> => {
    await c.get(path);
    return [String(cacheOutcome((await c.get(path)).headers)), c.hits(path)];
  };

  for (const [name, fields, hit] of [
    ['max-age', { 'cdn-cache-control': 'max-age=3600' }, true],
    ['long-over-short', { 'cache-control': 'max-age=0', 'cdn-cache-control': 'max-age=3600' }, true],
    ['short-over-long', { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'max-age=0' }, false],
    ['over-no-store', { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=3600' }, true],
    ['over-private', { 'cache-control': 'private', 'cdn-cache-control': 'max-age=3600' }, true],
    ['over-past-expires', { expires: httpDate(-3600), date: httpDate(0), 'cdn-cache-control': 'max-age=3600' }, true],
    ['over-invalid-expires', { expires: '0', 'cdn-cache-control': 'max-age=3600' }, true],
    ['0-over-future-expires', { expires: httpDate(3600), date: httpDate(0), 'cdn-cache-control': 'max-age=0' }, false],
    ['no-store', { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'no-store' }, false],
    ['private', { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'private' }, false],
    ['no-cache', { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'no-cache' }, false],
    ['extension', { 'cdn-cache-control': 'foobar, max-age=3600' }, true],
    ['s-maxage', { 'cdn-cache-control': 's-maxage=3600' }, true],
    ['2^31', { 'cdn-cache-control': 'max-age=2147483648' }, true],
    ['beyond-2^31', { 'cdn-cache-control': 'max-age=99999999999' }, true],
    ['age-above', { 'cdn-cache-control': 'max-age=3600', age: '7200' }, false],
  ] as Array<[string, Record<string, string>, boolean]>) {
    test(`${name}: ${JSON.stringify(fields)} is ${hit ? 'served from the cache' : 'fetched every time'}`, async () => {
      const [label, hits] = await twice(respond(name, fields));
      assert.equal(label, hit ? 'HIT' : 'MISS');
      assert.equal(hits, hit ? 1 : 2);
    });
  }

  for (const [name, value] of [
    ['space-before-equals', 'max-age =3600'],
    ['space-after-equals', 'max-age= 3600'],
    ['not-a-dictionary', 'max-age=3600, &&&&&'],
    ['upper-case-key', 'MaX-aGe=3600'],
    ['trailing-comma', 'max-age=3600,'],
    ['empty', ''],
  ]) {
    test(`an invalid targeted field (${name}: ${JSON.stringify(value)}) is ignored: Cache-Control governs`, async () => {
      const stored = await twice(respond(`invalid-store-${name}`, { 'cache-control': 'max-age=3600', 'cdn-cache-control': value }));
      const refused = await twice(respond(`invalid-nostore-${name}`, { 'cache-control': 'no-store', 'cdn-cache-control': value }));
      assert.deepEqual(stored, ['HIT', 1]);
      assert.deepEqual(refused, ['MISS', 2]);
    });
  }

  test('a targeted max-age of the wrong type (a String, a Decimal) is not used', async () => {
    assert.deepEqual(await twice(respond('string-max-age', { 'cache-control': 'max-age=3600', 'cdn-cache-control': 'max-age="3600"' })), ['MISS', 2]);
    assert.deepEqual(await twice(respond('decimal-max-age', { 'cdn-cache-control': 'max-age=3600.5' })), ['MISS', 2]);
  });

  test('the targeted field is relayed unchanged, on misses and hits', async () => {
    const path = respond('relayed', { 'cache-control': 'no-cache', 'cdn-cache-control': 'max-age=600, foo' });
    const miss = await c.get(path);
    const hit = await c.get(path);
    assert.equal(miss.headers['cdn-cache-control'], 'max-age=600, foo');
    assert.equal(hit.headers['cdn-cache-control'], 'max-age=600, foo');
    assert.equal(hit.headers['cache-control'], 'no-cache');
    assert.equal(cacheOutcome(hit.headers), 'HIT');
  });

  test('a targeted must-revalidate forbids serving stale on errors', async () => {
    let fail = false;
    const path = c.route('/cdn-must-revalidate', (_req, res) => {
      if (fail) {
        res.statusCode = 503;
        res.end('down');
        return;
      }
      res.setHeader('cache-control', 'max-age=3600, stale-if-error=3600');
      res.setHeader('cdn-cache-control', 'max-age=1, must-revalidate');
      res.end('up');
    });
    await c.get(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    fail = true;
    const answer = await c.get(path);
    assert.equal(answer.status, 503, 'Cache-Control’s stale-if-error is replaced by the targeted field');
  });
});

describe('targetedFields: a list of targeted fields, first present and valid wins', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin({ targetedFields: ['Proxy-Balancer-Cache-Control', 'cdn-cache-control'] });
  });
  after(() => c.close());

  const twice = async (path: string): Promise<string> => {
    await c.get(path);
    return String(cacheOutcome((await c.get(path)).headers));
  };
  const respond = (name: string, fields: Record<string, string>): string =>
    c.route(`/list-${name}`, (_req, res) => {
      for (const [field, value] of Object.entries(fields)) res.setHeader(field, value);
      res.end(name);
    });

  test('our own field wins over CDN-Cache-Control and Cache-Control', async () => {
    assert.equal(
      await twice(respond('ours-first', { 'proxy-balancer-cache-control': 'max-age=60', 'cdn-cache-control': 'no-store', 'cache-control': 'no-store' })),
      'HIT',
    );
    assert.equal(await twice(respond('ours-refuses', { 'proxy-balancer-cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' })), 'MISS');
  });

  test('an invalid first field falls through to the next valid one', async () => {
    assert.equal(
      await twice(respond('fallthrough', { 'proxy-balancer-cache-control': 'max-age=?', 'cdn-cache-control': 'max-age=60', 'cache-control': 'no-store' })),
      'HIT',
    );
  });

  test('targetedFields: [] ignores CDN-Cache-Control', async () => {
    const plain = await cachedOrigin({ targetedFields: [] });
    try {
      const path = plain.route('/ignored', (_req, res) => {
        res.setHeader('cache-control', 'no-store');
        res.setHeader('cdn-cache-control', 'max-age=60');
        res.end('x');
      });
      await plain.get(path);
      assert.equal(cacheOutcome((await plain.get(path)).headers), 'MISS');
      assert.equal(plain.hits(path), 2);
    } finally {
      await plain.close();
    }
  });

  test('an invalid targetedFields throws a TypeError naming the option', () => {
    assert.throws(() => responseCache({ targetedFields: 'cdn-cache-control' as never }), /options\.targetedFields must be an array of header field names/);
    assert.throws(() => responseCache({ targetedFields: ['bad name'] }), /options\.targetedFields/);
  });
});
