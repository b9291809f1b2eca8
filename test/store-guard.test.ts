import assert from 'node:assert/strict';
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import {
  loadBalance,
  redisRateLimitStore,
  redisStore,
  responseCache,
  StoreGuard,
  type CacheEntry,
  type CacheStore,
  type RateLimitStore,
  type StoreHealth,
} from 'proxy-balancer';
import { closeAll, delay, listen, request, cacheOutcome } from './helpers.js';

/** A store operation that answers only when told to. */
function pending<T>(): { promise: Promise<T>; resolve(value: T): void; reject(err: Error): void } {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A cache store of an app's own that never answers: the dependency that hangs. */
function hangingCacheStore(): CacheStore & { calls: number; release(): void } {
  const waiting: Array<() => void> = [];
  const store = {
    calls: 0,
    get: () => {
      store.calls++;
      return new Promise<CacheEntry | undefined>((resolve) => waiting.push(() => resolve(undefined)));
    },
    set: () => {
      store.calls++;
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    delete: async () => false,
    deletePrefix: async () => 0,
    release: () => {
      for (const wake of waiting.splice(0)) wake();
    },
  };
  return store;
}

describe('StoreGuard', () => {
  test('opens after failureThreshold failures in a row, refuses without calling during the cool-down, then one probe closes it', async () => {
    const guard = new StoreGuard('test store', { failureThreshold: 3, coolDown: 100, timeout: 1000 });
    const events: Array<[string, StoreHealth]> = [];
    guard.on('down', (h) => events.push(['down', h]));
    guard.on('up', (h) => events.push(['up', h]));
    let calls = 0;
    const failing = (): Promise<never> => {
      calls++;
      return Promise.reject(new Error('boom'));
    };
    for (let i = 0; i < 3; i++) await assert.rejects(guard.run(failing), /boom/);
    assert.equal(guard.circuit, 'open');
    assert.deepEqual(
      events.map(([e]) => e),
      ['down'],
    );
    assert.equal(events[0]![1].consecutiveFailures, 3);
    assert.equal(events[0]![1].lastError, 'boom');
    await assert.rejects(guard.run(failing), { code: 'ESTOREOPEN' });
    assert.equal(calls, 3, 'nothing sent while open');
    await delay(120);
    const probe = pending<string>();
    const probing = guard.run(() => probe.promise);
    assert.equal(guard.circuit, 'half-open');
    await assert.rejects(guard.run(failing), { code: 'ESTOREOPEN' }, 'one probe at a time');
    probe.resolve('pong');
    assert.equal(await probing, 'pong');
    assert.equal(guard.circuit, 'closed');
    assert.deepEqual(
      events.map(([e]) => e),
      ['down', 'up'],
    );
    const health = guard.health();
    assert.equal(health.succeeded, 1);
    assert.equal(health.failed, 3);
    assert.equal(health.shortCircuited, 2);
  });

  test('a failed probe opens the circuit for another cool-down, with no second down event', async () => {
    const guard = new StoreGuard('test store', { failureThreshold: 1, coolDown: 50 });
    let downs = 0;
    guard.on('down', () => downs++);
    await assert.rejects(guard.run(() => Promise.reject(new Error('a'))));
    await delay(60);
    await assert.rejects(
      guard.run(() => Promise.reject(new Error('b'))),
      /b/,
    );
    assert.equal(guard.circuit, 'open');
    await assert.rejects(
      guard.run(() => Promise.resolve(1)),
      { code: 'ESTOREOPEN' },
      'a new cool-down began',
    );
    assert.equal(downs, 1);
  });

  test('an operation past the timeout is cut at the deadline; its late answer is dropped', async () => {
    const guard = new StoreGuard('test store', { timeout: 30 });
    const late = pending<string>();
    const began = performance.now();
    await assert.rejects(
      guard.run(() => late.promise),
      { code: 'ESTORETIMEOUT', name: 'StoreUnavailableError' },
    );
    const waited = performance.now() - began;
    assert.ok(waited >= 25 && waited < 200, `cut after ${waited.toFixed(0)} ms`);
    assert.equal(guard.health().pending, 1, 'still waiting on the store');
    late.resolve('late');
    await delay(1);
    assert.equal(guard.health().pending, 0);
    assert.equal(guard.health().timedOut, 1);
    assert.equal(guard.health().succeeded, 0, 'the late answer counts for nothing');
  });

  test('maxPending bounds what waits on the store: past it, operations fail at once without being sent', async () => {
    const guard = new StoreGuard('test store', { maxPending: 2, timeout: 10_000 });
    const hung = [pending<void>(), pending<void>()];
    const runs = hung.map((h) => guard.run(() => h.promise));
    let sent = 0;
    await assert.rejects(
      guard.run(() => {
        sent++;
        return Promise.resolve();
      }),
      { code: 'ESTOREBUSY' },
    );
    assert.equal(sent, 0);
    for (const h of hung) h.resolve();
    await Promise.all(runs);
    assert.equal(guard.health().pending, 0);
  });

  test('a reconnecting client fails at once instead of queueing, and counts toward the circuit', async () => {
    const client = { status: 'reconnecting' };
    const guard = new StoreGuard('test store', { failureThreshold: 2 }, client);
    let sent = 0;
    const op = (): Promise<void> => {
      sent++;
      return Promise.resolve();
    };
    await assert.rejects(guard.run(op), { code: 'ESTOREOFFLINE', message: /reconnecting/ });
    await assert.rejects(guard.run(op), { code: 'ESTOREOFFLINE' });
    assert.equal(guard.circuit, 'open');
    assert.equal(sent, 0);
    client.status = 'ready';
  });

  test('an open circuit pings a client that can be pinged after each cool-down, so the store comes back with no request to probe it', async () => {
    let pings = 0;
    let answering = false;
    const client = {
      status: 'ready',
      ping: () => {
        pings++;
        return answering ? Promise.resolve('PONG') : Promise.reject(new Error('down'));
      },
    };
    const guard = new StoreGuard('test store', { failureThreshold: 1, coolDown: 40 }, client);
    // The guard's ping timer is unref'd (it must not keep an app alive); a server would keep this test's loop running.
    const alive = setInterval(() => {}, 1000);
    const up = new Promise<StoreHealth>((resolve) => guard.once('up', resolve)).finally(() => clearInterval(alive));
    await assert.rejects(guard.run(() => Promise.reject(new Error('first'))));
    await delay(100);
    assert.ok(pings >= 1, 'pinged while down');
    assert.equal(guard.circuit, 'open', 'a failed ping keeps it open');
    answering = true;
    const health = await up;
    assert.equal(health.circuit, 'closed');
    assert.equal(guard.circuit, 'closed');
  });

  test('invalid options throw TypeErrors naming them, for the guard and for the Redis stores', () => {
    assert.throws(() => new StoreGuard('s', { timeout: 0 }), /s: options\.timeout must be a positive number of milliseconds, got 0/);
    assert.throws(() => new StoreGuard('s', { failureThreshold: 0 }), /s: options\.failureThreshold must be a positive integer of failures, got 0/);
    assert.throws(() => new StoreGuard('s', { coolDown: -1 }), /s: options\.coolDown must be a positive number/);
    assert.throws(() => new StoreGuard('s', { maxPending: 1.5 }), /s: options\.maxPending must be a positive integer/);
    const client = {
      getBuffer: () => Promise.resolve(null),
      scan: () => Promise.resolve(['0', []]),
      evalsha: () => Promise.resolve(),
      eval: () => Promise.resolve(),
    };
    assert.throws(() => redisStore(client as never, { timeout: -5 }), /redisStore: options\.timeout must be a positive number of milliseconds, got -5/);
    assert.throws(() => redisStore(client as never, { timout: 5 } as never), /redisStore: unknown option "timout" — did you mean "timeout"\?/);
    assert.throws(() => redisRateLimitStore(client as never, { coolDown: 'x' } as never), /redisRateLimitStore: options\.coolDown must be/);
    assert.throws(
      () => loadBalance({ targets: ['http://127.0.0.1:1'], rateLimit: { limit: 1, failClosed: 'yes' as never } }),
      /options\.rateLimit\.failClosed must be a boolean/,
    );
    assert.throws(
      () => loadBalance({ targets: ['http://127.0.0.1:1'], rateLimit: { limit: 1, failClosed: true, failOpen: false } }),
      /options\.rateLimit\.failOpen must be left out when failClosed is given/,
    );
  });
});

describe("an app's own store that hangs", () => {
  test('a cache store that never answers: each request waits the deadline at most, then the circuit keeps the store out (event, stats, metrics)', async () => {
    const origin = await listen((_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end('origin');
    });
    const store = hangingCacheStore();
    const lb = loadBalance({ targets: [origin.url], cache: responseCache({ store }) });
    const downs: StoreHealth[] = [];
    lb.on('storeDown', (h) => downs.push(h));
    const front = await listen(lb);
    const metrics = await listen(lb.metrics() as http.RequestListener);
    try {
      const times: number[] = [];
      for (let i = 0; i < 8; i++) {
        const began = performance.now();
        const reply = await request(`${front.url}/a`);
        times.push(performance.now() - began);
        assert.equal(reply.status, 200);
        assert.equal(reply.body, 'origin');
        assert.equal(cacheOutcome(reply.headers), 'MISS');
      }
      assert.ok(Math.max(...times) < 50 + 150, `slowest ${Math.max(...times).toFixed(0)} ms`);
      assert.equal(downs.length, 1);
      assert.equal(downs[0]!.name, 'cache store');
      const stores = lb.stats().stores!;
      assert.equal(stores.length, 1);
      assert.equal(stores[0]!.circuit, 'open');
      assert.ok(stores[0]!.shortCircuited > 0);
      const callsWhileOpen = store.calls;
      await request(`${front.url}/a`);
      assert.equal(store.calls, callsWhileOpen, 'the open circuit sends nothing');
      const text = (await request(`${metrics.url}/`)).body;
      assert.match(text, /^proxy_balancer_store_up\{store="cache store"\} 0$/m);
      assert.match(text, /^proxy_balancer_store_operations_total\{store="cache store",result="timed_out"\} [5-9]$/m);
      assert.match(text, /^proxy_balancer_store_pending\{store="cache store"\} \d+$/m);
    } finally {
      store.release();
      await lb.close();
      await closeAll(front, origin, metrics);
    }
  });

  test('a rate-limit store that never answers: requests go through after the deadline (fail open); failClosed answers 503 with Retry-After', async () => {
    const origin = await listen((_req, res) => res.end('ok'));
    const hanging: RateLimitStore = { take: () => new Promise(() => {}) };
    const open = loadBalance({ targets: [origin.url], rateLimit: { limit: 1, store: hanging } });
    const closed = loadBalance({ targets: [origin.url], rateLimit: { limit: 1, store: { take: () => new Promise(() => {}) }, failClosed: true } });
    const frontOpen = await listen(open);
    const frontClosed = await listen(closed);
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${frontOpen.url}/`)).status, 200, 'limit 1, yet through: the store is not answering');
      const refused = await request(`${frontClosed.url}/`);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(refused.body, 'Service Unavailable\n');
      assert.equal(open.stats().stores![0]!.name, 'rate-limit store');
    } finally {
      await open.close();
      await closed.close();
      await closeAll(frontOpen, frontClosed, origin);
    }
  });
});
