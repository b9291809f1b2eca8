import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { cachedOrigin, type CachedOrigin } from './cache-origin.js';
import { cacheOutcome } from './helpers.js';

const BODY = '0123456789';

describe('Range requests answered from a complete stored response (RFC 9110 §14, RFC 9111 §3.4)', () => {
  let c: CachedOrigin;
  let path: string;
  before(async () => {
    c = await cachedOrigin();
    path = c.route('/ten-bytes', (_req, res) => {
      res.setHeader('cache-control', 'max-age=600');
      res.setHeader('etag', '"ten"');
      res.setHeader('last-modified', 'Sun, 06 Nov 1994 08:49:37 GMT');
      res.setHeader('content-type', 'text/plain');
      res.end(BODY);
    });
    await c.get(path);
  });
  after(() => c.close());

  for (const [range, body, contentRange] of [
    ['bytes=0-1', '01', 'bytes 0-1/10'],
    ['bytes=3-6', '3456', 'bytes 3-6/10'],
    ['bytes=7-', '789', 'bytes 7-9/10'],
    ['bytes=-3', '789', 'bytes 7-9/10'],
    ['bytes=-20', BODY, 'bytes 0-9/10'],
    ['bytes=5-100', '56789', 'bytes 5-9/10'],
    ['BYTES = 9-9', '9', 'bytes 9-9/10'],
  ]) {
    test(`${range} → 206 ${contentRange}`, async () => {
      const answer = await c.get(path, { range });
      assert.equal(answer.status, 206);
      assert.equal(answer.body, body);
      assert.equal(answer.headers['content-range'], contentRange);
      assert.equal(answer.headers['content-length'], String(body.length));
      assert.equal(answer.headers['content-type'], 'text/plain');
      assert.equal(answer.headers.etag, '"ten"');
      assert.equal(cacheOutcome(answer.headers), 'HIT');
      assert.equal(c.hits(path), 1, 'the origin was asked once, for the whole');
    });
  }

  for (const range of ['bytes=10-', 'bytes=20-30', 'bytes=-0']) {
    test(`${range} is unsatisfiable: 416 with Content-Range: bytes */10`, async () => {
      const answer = await c.get(path, { range });
      assert.equal(answer.status, 416);
      assert.equal(answer.headers['content-range'], 'bytes */10');
      assert.equal(answer.body, '');
      assert.equal(c.hits(path), 1);
    });
  }

  for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=5-2', 'bytes=x-1']) {
    test(`${range} (several ranges, another unit or malformed) is ignored: the whole 200`, async () => {
      const answer = await c.get(path, { range });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, BODY);
      assert.equal(answer.headers['content-range'], undefined);
      assert.equal(c.hits(path), 1);
    });
  }

  test('If-Range: the stored strong ETag or Last-Modified gets the range, anything else the whole', async () => {
    assert.equal((await c.get(path, { range: 'bytes=0-1', 'if-range': '"ten"' })).status, 206);
    assert.equal((await c.get(path, { range: 'bytes=0-1', 'if-range': 'Sun, 06 Nov 1994 08:49:37 GMT' })).status, 206);
    const changed = await c.get(path, { range: 'bytes=0-1', 'if-range': '"other"' });
    assert.equal(changed.status, 200);
    assert.equal(changed.body, BODY);
    assert.equal((await c.get(path, { range: 'bytes=0-1', 'if-range': 'W/"ten"' })).status, 200, 'a weak tag never satisfies If-Range');
    assert.equal(c.hits(path), 1);
  });

  test('HEAD with a Range gets the 200 head', async () => {
    const answer = await c.get(path, { range: 'bytes=0-1' }, 'HEAD');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-length'], '10');
  });
});

/** An origin that honours single byte ranges over `body`, with a strong ETag. */
function ranged(body: string, etag: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('cache-control', 'max-age=600');
    res.setHeader('etag', etag);
    const match = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (match === null) {
      res.end(body);
      return;
    }
    const start = match[1] === '' ? body.length - Number(match[2]) : Number(match[1]);
    const end = match[1] === '' || match[2] === '' ? body.length - 1 : Math.min(Number(match[2]), body.length - 1);
    res.statusCode = 206;
    res.setHeader('content-range', `bytes ${start}-${end}/${body.length}`);
    res.end(body.slice(start, end + 1));
  };
}

describe('stored 206 parts (RFC 9111 §3.3, §3.4)', () => {
  let c: CachedOrigin;
  before(async () => {
    c = await cachedOrigin();
  });
  after(() => c.close());

  test('a range miss goes upstream with its Range and the 206 is stored as a part', async () => {
    const path = c.route('/part', ranged('abcdefghij', '"p"'));
    const miss = await c.get(path, { range: 'bytes=-5' });
    assert.equal(miss.status, 206);
    assert.equal(miss.body, 'fghij');
    assert.equal(c.seen(path)[0]!.headers.range, 'bytes=-5');
    for (const [range, body, contentRange] of [
      ['bytes=-5', 'fghij', 'bytes 5-9/10'],
      ['bytes=6-8', 'ghi', 'bytes 6-8/10'],
      ['bytes=7-', 'hij', 'bytes 7-9/10'],
      ['bytes=-1', 'j', 'bytes 9-9/10'],
    ]) {
      const hit = await c.get(path, { range });
      assert.equal(hit.status, 206, range);
      assert.equal(hit.body, body, range);
      assert.equal(hit.headers['content-range'], contentRange, range);
      assert.equal(cacheOutcome(hit.headers), 'HIT', range);
    }
    assert.equal(c.hits(path), 1);
  });

  test('a part never answers a range it does not hold, nor a request for the whole', async () => {
    const path = c.route('/part-only', ranged('abcdefghij', '"q"'));
    await c.get(path, { range: 'bytes=5-9' });
    const outside = await c.get(path, { range: 'bytes=0-1' });
    assert.equal(outside.body, 'ab');
    assert.equal(cacheOutcome(outside.headers), 'MISS');
    const whole = await c.get(path);
    assert.equal(whole.status, 200);
    assert.equal(whole.body, 'abcdefghij');
    assert.equal(cacheOutcome(whole.headers), 'MISS');
    assert.equal(c.hits(path), 3);
  });

  test('two parts with the same strong ETag combine; once complete, the whole is served from the cache', async () => {
    const path = c.route('/combine', ranged('abcdefghij', '"c"'));
    await c.get(path, { range: 'bytes=0-3' });
    await c.get(path, { range: 'bytes=4-6' });
    assert.equal((await c.get(path, { range: 'bytes=2-5' })).body, 'cdef', 'the combined part 0-6 holds 2-5');
    await c.get(path, { range: 'bytes=7-' });
    const whole = await c.get(path);
    assert.equal(whole.status, 200);
    assert.equal(whole.body, 'abcdefghij');
    assert.equal(whole.headers['content-length'], '10');
    assert.equal(whole.headers['content-range'], undefined);
    assert.equal(cacheOutcome(whole.headers), 'HIT');
    assert.equal(c.hits(path), 3);
  });

  test('parts with a weak or a different ETag are not combined', async () => {
    let etag = '"v1"';
    const path = c.route('/changing', (req, res) => ranged('abcdefghij', etag)(req, res));
    await c.get(path, { range: 'bytes=0-4' });
    etag = '"v2"';
    await c.get(path, { range: 'bytes=5-9' });
    const whole = await c.get(path);
    assert.equal(cacheOutcome(whole.headers), 'MISS');
    assert.equal(c.hits(path), 3);
  });

  test('a 206 whose body does not match its Content-Range is not stored', async () => {
    const path = c.route('/lying-part', (_req, res) => {
      res.statusCode = 206;
      res.setHeader('cache-control', 'max-age=600');
      res.setHeader('content-range', 'bytes 4-9/10');
      res.end('01234');
    });
    await c.get(path, { range: 'bytes=-5' });
    assert.equal(cacheOutcome((await c.get(path, { range: 'bytes=-5' })).headers), 'MISS');
    assert.equal(c.hits(path), 2);
  });
});
