import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachedOrigin, type CachedOrigin } from './cache-origin.js';
import { cacheOutcome } from './helpers.js';

/** RFC 9111 §4.1: selecting header values may be normalised before they are compared. */
describe('Vary: Accept-Language normalised (order of equal weights, case, q-values)', () => {
  let c: CachedOrigin;
  let path: string;
  before(async () => {
    c = await cachedOrigin();
    path = c.route('/lang', (req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('vary', 'Accept-Language');
      res.end(`for ${req.headers['accept-language']}`);
    });
  });
  after(() => c.close());

  test('the same preferences written differently select one variant', async () => {
    const first = await c.get(path, { 'accept-language': 'en-US, de;q=0.5, fr' });
    assert.equal(cacheOutcome(first.headers), 'MISS');
    for (const same of ['fr, en-US, de;q=0.5', 'EN-us,FR , De;Q=0.50', 'en-us;q=1, fr;q=1.0, de;q=0.500']) {
      const hit = await c.get(path, { 'accept-language': same });
      assert.equal(cacheOutcome(hit.headers), 'HIT', same);
      assert.equal(hit.body, 'for en-US, de;q=0.5, fr');
    }
    assert.equal(c.hits(path), 1);
  });

  test('other preferences are another variant', async () => {
    for (const other of ['en-US;q=0.5, de, fr', 'en-US', 'de;q=0.5, fr', '']) {
      const answer = await c.get(path, other === '' ? {} : { 'accept-language': other });
      assert.equal(cacheOutcome(answer.headers), 'MISS', JSON.stringify(other));
    }
  });

  test('other selecting headers: whitespace and repeated lines normalised', async () => {
    const foo = c.route('/foo', (req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('vary', 'Foo');
      res.end(`foo ${req.headers.foo}`);
    });
    await c.get(foo, { foo: '1, 2' });
    assert.equal(cacheOutcome((await c.get(foo, { foo: ' 1,2 ' })).headers), 'HIT');
    assert.equal(cacheOutcome((await c.get(foo, { foo: ['1', '2'] })).headers), 'HIT');
    assert.equal(cacheOutcome((await c.get(foo, { foo: '2, 1' })).headers), 'MISS', 'order matters for fields without known semantics');
  });
});
