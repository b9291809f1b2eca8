import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cachedOrigin, httpDate, type CachedOrigin } from './cache-origin.js';
import { cacheOutcome } from './helpers.js';

/**
 * current_age (RFC 9111 §4.2.3): apparent_age = max(0, response_time − date_value);
 * corrected_age_value = age_value + response_delay; corrected_initial_age = the larger;
 * current_age = corrected_initial_age + resident_time. The Age sent is current_age in seconds.
 */
describe('Age from upstream (RFC 9111 §4.2.3, §5.1)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  const upstream = (path: string, headers: Record<string, string>, delayMs = 0): string =>
    c.route(path, (_req, res) => {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      setTimeout(() => res.end(path), delayMs);
    });

  test('Age: 3600 with max-age=3600 is stale on arrival: never served from the cache', async () => {
    const path = upstream('/arrives-stale', { 'cache-control': 'max-age=3600', age: '3600' });
    const first = await c.get(path);
    const second = await c.get(path);
    assert.equal(cacheOutcome(second.headers), 'MISS');
    assert.equal(c.hits(path), 2);
    assert.equal(first.headers.age, '3600', 'the upstream Age is passed on on a miss');
  });

  test('Age above max-age is stale on arrival too', async () => {
    const path = upstream('/older-than-lifetime', { 'cache-control': 'max-age=10', age: '15' });
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS');
    assert.equal(c.hits(path), 2);
  });

  test('corrected_age_value: the upstream Age counts in the Age served and in freshness', async () => {
    const path = upstream('/aged-30', { 'cache-control': 'max-age=600', age: '30', date: httpDate(0) });
    await c.get(path);
    const hit = await c.get(path);
    assert.equal(cacheOutcome(hit.headers), 'HIT');
    assert.ok(['30', '31'].includes(String(hit.headers.age)), `Age ${hit.headers.age}, expected 30 (31 if a second boundary passed)`);
    assert.equal(c.hits(path), 1);
  });

  test('apparent_age: a Date 100 s in the past ages the response by 100 s', async () => {
    const path = upstream('/old-date', { 'cache-control': 'max-age=600', date: httpDate(-100) });
    await c.get(path);
    const hit = await c.get(path);
    assert.equal(cacheOutcome(hit.headers), 'HIT');
    assert.ok(['100', '101'].includes(String(hit.headers.age)), `Age ${hit.headers.age}`);
  });

  test('corrected_initial_age is the larger of apparent_age and corrected_age_value', async () => {
    const byDate = upstream('/date-wins', { 'cache-control': 'max-age=600', date: httpDate(-50), age: '10' });
    const byAge = upstream('/age-wins', { 'cache-control': 'max-age=600', date: httpDate(0), age: '80' });
    await Promise.all([c.get(byDate), c.get(byAge)]);
    const [a, b] = await Promise.all([c.get(byDate), c.get(byAge)]);
    assert.ok(['50', '51'].includes(String(a.headers.age)), `Age ${a.headers.age}`);
    assert.ok(['80', '81'].includes(String(b.headers.age)), `Age ${b.headers.age}`);
  });

  test('response_delay: the time the upstream took is added to its Age', async () => {
    const path = upstream('/slow', { 'cache-control': 'max-age=600', age: '10', date: httpDate(0) }, 1200);
    await c.get(path);
    const hit = await c.get(path);
    // 10 s of Age + 1.2 s in flight: 11 (12 if a second boundary passed).
    assert.ok(['11', '12'].includes(String(hit.headers.age)), `Age ${hit.headers.age}`);
  });

  test('resident_time: the Age served grows while the entry is stored', async () => {
    const path = upstream('/resident', { 'cache-control': 'max-age=600', age: '5', date: httpDate(0) });
    await c.get(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const hit = await c.get(path);
    assert.ok(['6', '7'].includes(String(hit.headers.age)), `Age ${hit.headers.age}`);
  });

  for (const [value, meaning] of [
    ['abc', 'non-numeric'],
    ['-7200', 'negative'],
    ['7200.0', 'a decimal'],
    ['', 'empty'],
  ]) {
    test(`an Age that is ${meaning} (${JSON.stringify(value)}) is ignored (§5.1)`, async () => {
      const path = upstream(`/age-invalid-${meaning.replace(/\W/g, '')}`, { 'cache-control': 'max-age=3600', age: value, date: httpDate(0) });
      await c.get(path);
      const hit = await c.get(path);
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.ok(['0', '1'].includes(String(hit.headers.age)), `Age ${hit.headers.age}`);
      assert.equal(c.hits(path), 1);
    });
  }

  test('a list-valued Age counts its first member (§5.1): 7200, 0 is stale on arrival; 0, 7200 is fresh', async () => {
    const old = upstream('/age-list-old', { 'cache-control': 'max-age=3600', age: '7200, 0' });
    const young = upstream('/age-list-young', { 'cache-control': 'max-age=3600', age: '0, 7200' });
    await Promise.all([c.get(old), c.get(young)]);
    const [a, b] = await Promise.all([c.get(old), c.get(young)]);
    assert.equal(cacheOutcome(a.headers), 'MISS');
    assert.equal(cacheOutcome(b.headers), 'HIT');
    assert.equal(c.hits(old), 2);
    assert.equal(c.hits(young), 1);
  });

  test('request max-age counts the upstream Age; min-fresh too', async () => {
    const path = upstream('/aged-1800', { 'cache-control': 'max-age=3600', age: '1800' });
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path, { 'cache-control': 'max-age=600' })).headers), 'MISS');
    assert.equal(cacheOutcome((await c.get(path, { 'cache-control': 'min-fresh=2000' })).headers), 'MISS');
    assert.equal(cacheOutcome((await c.get(path, { 'cache-control': 'max-age=3000' })).headers), 'HIT');
    assert.equal(c.hits(path), 3);
  });
});
