import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBalance } from 'proxy-balancer';
import { backend, closeAll, listen, request, waitFor } from './helpers.js';

async function spread(url: string, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { body } = await request(url);
    seen[body] = (seen[body] ?? 0) + 1;
  }
  return seen;
}

describe('runtime membership', () => {
  test('add, remove and re-add targets while serving', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(backend));
    const lb = loadBalance({ targets: [a!.url] });
    const front = await listen(lb);
    try {
      assert.deepEqual(await spread(`${front.url}/`, 4), { a: 4 });
      lb.pool.add(b!.url);
      lb.pool.add({ url: c!.url, weight: 2 });
      assert.equal(lb.pool.ready.length, 3);
      assert.deepEqual(await spread(`${front.url}/`, 9), { a: 3, b: 3, c: 3 });
      assert.equal(lb.pool.remove(a!.url), true);
      assert.equal(lb.pool.remove(a!.url), false, 'removing twice says so');
      assert.deepEqual(await spread(`${front.url}/`, 4), { b: 2, c: 2 });
      const again = lb.pool.add(`${b!.url}/`);
      assert.equal(again, lb.pool.get(b!.url), 'adding a member again returns it');
      assert.equal(lb.pool.targets.length, 2);
      assert.throws(() => lb.pool.add('nope'), /pool\.add\(target\): invalid URL/);
      assert.throws(
        () => lb.pool.add({ url: c!.url, wieght: 2 } as never),
        /^TypeError: pool\.add\(target\): unknown option "wieght" — did you mean "weight"\?$/,
      );
      assert.equal(lb.pool.get(c!.url)!.weight, 2, 'a refused add changes nothing');
    } finally {
      await lb.close();
      await closeAll(front, a, b, c);
    }
  });

  test('drain takes a target out of rotation, waits for its in-flight requests, then removes it', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = await listen((req, res) => {
      if (req.url === '/hold') void held.then(() => res.end('slow'));
      else res.end('slow');
    });
    const fast = await backend('fast');
    const lb = loadBalance({ targets: [slow.url, fast.url] });
    const front = await listen(lb);
    try {
      const pending = request(`${front.url}/hold`); // round robin: first request goes to `slow`
      await waitFor(() => slow.hits === 1);
      let drained = false;
      const draining = lb.pool.drain(slow.url).then((v) => (drained = v));
      assert.equal(lb.pool.get(slow.url)?.state, 'draining');
      assert.deepEqual(await spread(`${front.url}/`, 4), { fast: 4 }, 'no new requests while draining');
      assert.equal(drained, false, 'still waiting for the held request');
      release();
      assert.equal((await pending).body, 'slow', 'the in-flight request completes');
      await draining;
      assert.equal(drained, true);
      assert.equal(lb.pool.get(slow.url), undefined, 'removed once idle');
      assert.equal(await lb.pool.drain('http://127.0.0.1:1'), false);
    } finally {
      release();
      await lb.close();
      await closeAll(front, slow, fast);
    }
  });

  test('the ready snapshot is a new frozen array after every change', () => {
    const lb = loadBalance({ targets: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] });
    const before = lb.pool.ready;
    assert.ok(Object.isFrozen(before));
    lb.pool.add('http://127.0.0.1:3003');
    assert.notEqual(lb.pool.ready, before);
    assert.equal(before.length, 2, 'an old snapshot is never mutated');
    const target = lb.pool.get('http://127.0.0.1:3001')!;
    lb.pool.setHealthy(target, false);
    assert.deepEqual(
      lb.pool.ready.map((t) => t.key),
      ['http://127.0.0.1:3002', 'http://127.0.0.1:3003'],
    );
    lb.pool.setHealthy(target, true);
    assert.equal(lb.pool.ready.length, 3);
    void lb.close();
  });
});

describe('drain edge cases', () => {
  test('draining twice shares one promise; adding the target back calls the drain off (resolves false)', async () => {
    const lb = loadBalance({ targets: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] });
    const target = lb.pool.get('http://127.0.0.1:3001')!;
    target.inFlight = 1; // a request still running on it
    const first = lb.pool.drain(target);
    assert.equal(lb.pool.drain(target), first);
    lb.pool.add('http://127.0.0.1:3001');
    assert.equal(await first, false);
    assert.equal(lb.pool.get('http://127.0.0.1:3001')?.state, 'up');
    target.inFlight = 0;
    await lb.close();
  });
});
