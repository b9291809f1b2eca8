import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type Target } from 'proxy-balancer';
import { backend, closeAll, deadPort, listen, request, type TestServer } from './helpers.js';

describe('strategy as a plain function', () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    [a, b] = await Promise.all([backend('a'), backend('b')]);
  });
  after(() => closeAll(a, b));

  test("http-proxy-middleware's router, by Host: the function gets the ready targets and the request", async () => {
    const seen: Array<{ keys: string[]; host: string | undefined }> = [];
    const byHost = { 'beta.example': b.url };
    const lb = loadBalance({
      targets: [a.url, b.url],
      strategy: (targets, req) => {
        seen.push({ keys: targets.map((t) => t.key), host: req.headers.host });
        const wanted = byHost[req.headers.host as keyof typeof byHost] ?? a.url;
        return targets.find((t) => t.key === wanted);
      },
    });
    const front = await listen(lb);
    try {
      assert.equal((await request(front.url, { headers: { host: 'beta.example' } })).body, 'b');
      assert.equal((await request(front.url, { headers: { host: 'www.example' } })).body, 'a');
      assert.equal((await request(front.url, { headers: { host: 'beta.example' } })).body, 'b');
      assert.deepEqual(seen[0], { keys: [a.url, b.url], host: 'beta.example' });
      assert.equal(lb.stats().strategy, 'custom', 'an inline arrow is named custom');
      lb.pool.drain(b.url);
      assert.equal((await request(front.url, { headers: { host: 'beta.example' } })).status, 503, 'a drained target is not offered, so none is picked');
      assert.deepEqual(seen.at(-1)!.keys, [a.url]);
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('undefined, a target of another pool, a URL string or an object are refused with 503 and counted as unavailable', async () => {
    const other = loadBalance({ targets: [a.url] });
    const foreign = other.pool.targets[0]!;
    const answers: unknown[] = [undefined, foreign, a.url, { key: a.url }];
    let call = 0;
    const lb = loadBalance({ targets: [a.url], retryAfter: 2, strategy: () => answers[call++] as Target | undefined });
    const front = await listen(lb);
    const hits = a.hits;
    try {
      for (let i = 0; i < answers.length; i++) {
        const reply = await request(front.url);
        assert.equal(reply.status, 503, String(i));
        assert.equal(reply.headers['retry-after'], '2');
        assert.ok(!reply.body.includes('127.0.0.1'), 'no backend address leaks');
      }
      assert.equal(lb.stats().unavailable, answers.length);
      assert.equal(a.hits, hits);
    } finally {
      await lb.close();
      await other.close();
      await front.close();
    }
  });

  test('a function that throws: 503 and a process warning, the server carries on', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    const lb = loadBalance({
      targets: [a.url],
      strategy: function byTenant(targets: readonly Target[], req: IncomingMessage) {
        if (req.url === '/boom') throw new Error('no tenant');
        return targets[0];
      },
    });
    const front = await listen(lb);
    try {
      assert.equal((await request(`${front.url}/boom`)).status, 503);
      assert.equal((await request(`${front.url}/fine`)).body, 'a');
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(
        warnings.some((w) => w.includes('strategy function threw') && w.includes('no tenant')),
        warnings.join('\n'),
      );
      assert.equal(lb.stats().strategy, 'byTenant', 'a named function keeps its name');
    } finally {
      process.off('warning', onWarning);
      await lb.close();
      await front.close();
    }
  });

  test('a retry still moves to another target when the function keeps naming the failed one', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const lb = loadBalance({ targets: [dead, a.url], strategy: (targets) => targets.find((t) => t.key === dead) ?? targets[0] });
    const front = await listen(lb);
    try {
      const reply = await request(front.url);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'a');
      assert.equal(lb.stats().retries, 1);
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('anything else is a TypeError naming both accepted forms', () => {
    assert.throws(
      () => loadBalance({ targets: [a.url], strategy: 42 as never }),
      /^TypeError: loadBalance: options\.strategy must be a strategy \(an object with a pick\(\) method\) or a function \(targets, req\) => target, got 42$/,
    );
  });
});
