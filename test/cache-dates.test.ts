import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseHttpDate } from '../lib/cache/http-date.js';
import { cachedOrigin, httpDate, type CachedOrigin } from './cache-origin.js';
import { cacheOutcome } from './helpers.js';

const SUNDAY = Date.UTC(1994, 10, 6, 8, 49, 37);

describe('one strict HTTP-date parser (RFC 9110 §5.6.7, RFC 9111 §4.2)', () => {
  test('the three formats, names case-insensitive, a two-digit RFC 850 year within 50 years', () => {
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), SUNDAY);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), SUNDAY);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), SUNDAY);
    assert.equal(parseHttpDate('SUN, 06 NOV 1994 08:49:37 gmt'), SUNDAY);
    assert.equal(parseHttpDate('Thursday, 18-Aug-50 02:01:18 GMT'), Date.UTC(2050, 7, 18, 2, 1, 18));
  });

  for (const invalid of [
    '0',
    '-1',
    'Thu, 18 Aug 2050 02:01:18 UTC',
    'Thu, 18 Aug 2050 02:01:18 +0000',
    'Thu, 18 Aug 50 02:01:18 GMT',
    'Thu 18 Aug 2050 02:01:18 GMT',
    'Thu, 18  Aug  2050 02:01:18 GMT',
    'Thu, 18-Aug-2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 02.01.18 GMT',
    'Thu, 18 Aug 2050 2:01:18 GMT',
    'Thu, 18 Aug 2050 02:01:18 GMT ',
    'Thu, 31 Feb 2050 02:01:18 GMT',
    'Thu, 18 Aug 2050 24:01:18 GMT',
    '2050-08-18T02:01:18Z',
    'Thu, 18 Aug 2050\r\n 02:01:18 GMT',
  ]) {
    test(`${JSON.stringify(invalid)} is not an HTTP-date`, () => assert.equal(parseHttpDate(invalid), undefined));
  }
  test('a field repeated on two lines is not a date', () => assert.equal(parseHttpDate(['Sun, 06 Nov 1994 08:49:37 GMT', 'x']), undefined));
});

describe('dates through the cache: Expires, Date, Last-Modified, If-Modified-Since', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  const withExpires = (name: string, expires: string, date = httpDate(0)): string =>
    c.route(`/expires-${name}`, (_req, res) => {
      res.setHeader('expires', expires);
      res.setHeader('date', date);
      res.end(name);
    });

  const future = new Date(Date.now() + 3600_000);
  const weekday = future.toUTCString().slice(0, 3);
  const longDay = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][future.getUTCDay()]!;
  const [, day, month, year, time] = future.toUTCString().split(' ') as [string, string, string, string, string];
  for (const [name, value] of [
    ['imf-fixdate', future.toUTCString()],
    ['rfc850', `${longDay}, ${day}-${month}-${year.slice(2)} ${time} GMT`],
    ['asctime', `${weekday} ${month} ${day.startsWith('0') ? ` ${day.slice(1)}` : day} ${time} ${year}`],
    ['lower-case', future.toUTCString().toLowerCase()],
  ]) {
    test(`a future Expires as ${name} (${value}) is fresh`, async () => {
      const path = withExpires(name, value);
      await c.get(path);
      const hit = await c.get(path);
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.equal(hit.headers.expires, value, 'Expires is relayed as sent');
      assert.equal(c.hits(path), 1);
    });
  }

  // Each would be a date in 2050 if it were valid.
  for (const [name, value] of [
    ['zero', '0'],
    ['utc', 'Thu, 18 Aug 2050 02:01:18 UTC'],
    ['no-comma', 'Thu 18 Aug 2050 02:01:18 GMT'],
    ['two-spaces', 'Thu, 18  Aug  2050 02:01:18 GMT'],
    ['dashes', 'Thu, 18-Aug-2050 02:01:18 GMT'],
    ['periods', 'Thu, 18 Aug 2050 02.01.18 GMT'],
    ['one-digit-hour', 'Thu, 18 Aug 2050 2:01:18 GMT'],
    ['two-digit-year', 'Thu, 18 Aug 50 02:01:18 GMT'],
    ['iso', '2050-08-18T02:01:18Z'],
  ]) {
    test(`an invalid Expires (${name}: ${JSON.stringify(value)}) means already expired`, async () => {
      const path = withExpires(`bad-${name}`, value);
      await c.get(path);
      assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS');
      assert.equal(c.hits(path), 2);
    });
  }

  test('an invalid Date does not spoil a valid Expires: the time of receipt stands in', async () => {
    const path = withExpires('bad-date', httpDate(60), 'yesterday');
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'HIT');
    assert.equal(c.hits(path), 1);
  });

  test('Expires before Date is already expired, whatever the local clock says', async () => {
    const path = withExpires('before-date', httpDate(300), httpDate(400));
    await c.get(path);
    assert.equal(cacheOutcome((await c.get(path)).headers), 'MISS');
  });

  test('Last-Modified in RFC 850 form gives heuristic freshness; an invalid one gives none', async () => {
    const old = new Date(Date.now() - 86400_000 * 10);
    const longName = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][old.getUTCDay()]!;
    const [, d, m, y, t] = old.toUTCString().split(' ') as [string, string, string, string, string];
    const rfc850 = c.route('/lm-rfc850', (_req, res) => {
      res.setHeader('last-modified', `${longName}, ${d}-${m}-${y.slice(2)} ${t} GMT`);
      res.end('old');
    });
    const invalid = c.route('/lm-invalid', (_req, res) => {
      res.setHeader('last-modified', old.toISOString());
      res.end('old');
    });
    await Promise.all([c.get(rfc850), c.get(invalid)]);
    assert.equal(cacheOutcome((await c.get(rfc850)).headers), 'HIT');
    assert.equal(cacheOutcome((await c.get(invalid)).headers), 'MISS');
  });

  test('If-Modified-Since is parsed by the same parser: RFC 850 and asctime forms match, an invalid one is ignored', async () => {
    const modified = 'Sun, 06 Nov 1994 08:49:37 GMT';
    const path = c.route('/ims-forms', (_req, res) => {
      res.setHeader('cache-control', 'max-age=600');
      res.setHeader('last-modified', modified);
      res.end('body');
    });
    await c.get(path);
    assert.equal((await c.get(path, { 'if-modified-since': 'Sunday, 06-Nov-94 08:49:37 GMT' })).status, 304);
    assert.equal((await c.get(path, { 'if-modified-since': 'Sun Nov  6 08:49:37 1994' })).status, 304);
    const invalid = await c.get(path, { 'if-modified-since': '1994-11-06T08:49:37Z' });
    assert.equal(invalid.status, 200);
    assert.equal(invalid.body, 'body');
    assert.equal(c.hits(path), 1);
  });
});
