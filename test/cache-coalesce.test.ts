import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { loadBalance, responseCache } from 'proxy-balancer';
import { closeAll, delay, listen } from './helpers.js';

/** A GET through `port`; resolves to its duration in ms, or -1 when `abortAfter` cut it. */
function timedGet(port: number, path: string, abortAfter?: number): Promise<number> {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.get({ port, host: '127.0.0.1', path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(Date.now() - started));
    });
    req.on('error', () => resolve(-1));
    if (abortAfter !== undefined)
      setTimeout(() => {
        req.destroy();
        resolve(-1);
      }, abortAfter);
  });
}

describe('miss coalescing', () => {
  for (const cacheControl of ['no-store', 'max-age=60']) {
    test(`a waiting client that leaves does not stall the next request (${cacheControl})`, async () => {
      const origin = await listen((_req, res) => {
        setTimeout(() => {
          res.setHeader('cache-control', cacheControl);
          res.end('slow');
        }, 200);
      });
      const lb = loadBalance({ targets: [origin.url], cache: responseCache({ coalesceTimeout: 5000 }) });
      const front = await listen(lb);
      try {
        const first = timedGet(front.port, '/u');
        await delay(20);
        const leaving = timedGet(front.port, '/u', 50);
        await delay(60);
        const next = timedGet(front.port, '/u');
        assert.ok((await first) < 2000);
        assert.equal(await leaving, -1);
        const took = await next;
        assert.ok(took >= 0 && took < 2000, `the next request took ${took} ms (coalesceTimeout is 5000)`);
        assert.equal(lb.stats().inFlight, 0);
      } finally {
        await lb.close();
        await closeAll(front, origin);
      }
    });
  }

  test('once a response was not storable, misses of that URL go to the origin side by side (hit-for-pass)', async () => {
    let concurrent = 0;
    let peak = 0;
    const origin = await listen((_req, res) => {
      concurrent++;
      peak = Math.max(peak, concurrent);
      setTimeout(() => {
        concurrent--;
        res.setHeader('cache-control', 'no-store');
        res.end('private');
      }, 100);
    });
    const lb = loadBalance({ targets: [origin.url], cache: responseCache() });
    const front = await listen(lb);
    try {
      await timedGet(front.port, '/hot');
      const before = lb.stats().cache!.coalesced;
      const times = await Promise.all(Array.from({ length: 10 }, () => timedGet(front.port, '/hot')));
      assert.equal(lb.stats().cache!.coalesced, before, 'none of them waited for another');
      assert.ok(peak >= 5, `the origin saw ${peak} at once`);
      assert.ok(Math.max(...times) < 1000, `slowest ${Math.max(...times)} ms`);
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });
});
