import assert from 'node:assert/strict';
import http, { type RequestListener } from 'node:http';
import { describe, test } from 'node:test';
import { loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { closeAll, delay, listen, request, type TestServer, waitFor } from './helpers.js';

/** Listens on a fixed port (0 for any): `listen()` always asks for an ephemeral one. */
async function listenOn(port: number, handler: RequestListener): Promise<TestServer> {
  const server = http.createServer();
  const original = server.listen.bind(server);
  (server as unknown as { listen: (...args: unknown[]) => unknown }).listen = (_port: unknown, ...rest: unknown[]) => original(port, ...(rest as []));
  return listen(handler, server);
}

const reset: RequestListener = (req) => req.socket.destroy();
const first = { name: 'first', pick: (targets: readonly unknown[]) => targets[0] } as unknown as LoadBalanceOptions['strategy'];
/** No budget limit, so timing tests can retry every request. */
const unlimited = { budgetPercent: 100, minRetries: 100_000 };

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

function summary(values: number[]): string {
  const sorted = [...values].sort((x, y) => x - y);
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  return `mean ${mean.toFixed(1)} p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} max ${sorted.at(-1)!.toFixed(1)} ms`;
}

describe('back-off between attempts', () => {
  test('with default options, a single target down for 150-300 ms under a loop of GETs loses none of them', async (t) => {
    const handler: RequestListener = (_req, res) => res.end('ok');
    let backend = await listenOn(0, handler);
    const port = backend.port;
    // Defaults only: 2 retries with back-off, then retry.tryDuration (1 s) of tries every 100 ms.
    const lb = loadBalance({ targets: [backend.url] });
    const front = await listen(lb);
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    let slowest = 0;
    const loop = async () => {
      while (!stop) {
        const started = Date.now();
        try {
          const reply = await request(`${front.url}/`);
          if (reply.status === 200 && reply.body === 'ok') ok++;
          else failures.push(`${reply.status} ${reply.body}`);
        } catch (err) {
          failures.push(String(err));
        }
        slowest = Math.max(slowest, Date.now() - started);
      }
    };
    const loops = Array.from({ length: 4 }, loop);
    const downtimes: number[] = [];
    try {
      for (const outage of [150, 220, 300]) {
        const before = ok;
        await delay(250);
        assert.ok(ok > before, 'the loops are running');
        await backend.close();
        const down = Date.now();
        await delay(outage);
        backend = await listenOn(port, handler);
        downtimes.push(Date.now() - down);
      }
      await delay(250);
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    try {
      const stats = lb.stats();
      t.diagnostic(
        `${ok + failures.length} GETs, ${failures.length} failed; downtimes ${downtimes.join('/')} ms; ${stats.retries} retries; slowest GET ${slowest} ms`,
      );
      assert.deepEqual(failures, []);
      assert.ok(ok > 100, `${ok} GETs`);
      assert.ok(stats.retries > 0, 'the restarts were ridden through by retries');
      assert.equal(stats.inFlight, 0);
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });

  test('gaps between attempts on a resetting target stay within [0, min(max, base·2^(n-1))], jittered', async (t) => {
    const arrivals = new Map<string, number[]>();
    const backend = await listen((req) => {
      const id = req.headers['x-id'] as string;
      arrivals.set(id, [...(arrivals.get(id) ?? []), performance.now()]);
      req.socket.destroy();
    });
    // tryDuration: 0, so the four retries are all there is (the tries it adds wait `interval`, not a back-off).
    const lb = loadBalance({ targets: [backend.url], retry: { retries: 4, backoff: { base: 20, max: 80 }, tryDuration: 0, ...unlimited } });
    const front = await listen(lb);
    const bounds = [20, 40, 80, 80];
    try {
      for (let i = 0; i < 25; i++) assert.equal((await request(`${front.url}/`, { headers: { 'x-id': String(i) } })).status, 502);
      const gaps: number[][] = bounds.map(() => []);
      for (const times of arrivals.values()) {
        assert.equal(times.length, 5, 'one attempt and four retries on the same target');
        for (let k = 1; k < times.length; k++) gaps[k - 1]!.push(times[k]! - times[k - 1]!);
      }
      gaps.forEach((values, k) => {
        t.diagnostic(`retry ${k + 1} (bound ${bounds[k]} ms): ${summary(values)}`);
        // 60 ms for the reset, the reconnect and a loaded machine (an uncapped back-off would pass 160 ms by retry 4).
        for (const gap of values) assert.ok(gap <= bounds[k]! + 60, `retry ${k + 1} waited ${gap.toFixed(1)} ms`);
      });
      for (const k of [2, 3]) {
        const mean = gaps[k]!.reduce((s, v) => s + v, 0) / gaps[k]!.length;
        assert.ok(mean > 12 && mean < 68, `full jitter: retry ${k + 1} waits ${mean.toFixed(1)} ms on average of [0, 80]`);
      }
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });

  test('status retries wait for the back-off too, each on another target', async (t) => {
    const arrivals: Array<[string, number]> = [];
    const backends = await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((name) =>
        listen((req, res) => {
          arrivals.push([`${req.headers['x-id']}`, performance.now()]);
          res.statusCode = 503;
          res.end(name);
        }),
      ),
    );
    const lb = loadBalance({
      targets: backends.map((b) => b.url),
      strategy: first,
      outlierDetection: false,
      retry: { onStatus: [503], retries: 4, backoff: { base: 20, max: 80 }, ...unlimited },
    });
    const front = await listen(lb);
    try {
      for (let i = 0; i < 10; i++) {
        const reply = await request(`${front.url}/`, { headers: { 'x-id': String(i) } });
        assert.equal(reply.status, 503);
        assert.equal(reply.body, 'e', 'the last attempt is relayed');
      }
      assert.deepEqual(
        backends.map((b) => b.hits),
        [10, 10, 10, 10, 10],
      );
      const gaps: number[] = [];
      const bounds = [20, 40, 80, 80];
      for (let i = 0; i < 10; i++) {
        const times = arrivals.filter(([id]) => id === String(i)).map(([, at]) => at);
        for (let k = 1; k < times.length; k++) {
          const gap = times[k]! - times[k - 1]!;
          gaps.push(gap);
          assert.ok(gap <= bounds[k - 1]! + 30, `retry ${k} waited ${gap.toFixed(1)} ms`);
        }
      }
      t.diagnostic(`status retry gaps: ${summary(gaps)}`);
    } finally {
      await lb.close();
      await closeAll(front, ...backends);
    }
  });

  test('backoff: false retries at once and never on the same target; a status is never retried on the same target', async () => {
    const backend = await listen(reset);
    const lb = loadBalance({ targets: [backend.url], retry: { backoff: false } });
    const front = await listen(lb);
    const busy = await listen((_req, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    const lb2 = loadBalance({ targets: [busy.url], retry: { onStatus: [503] } });
    const front2 = await listen(lb2);
    try {
      assert.equal((await request(`${front.url}/`)).status, 502);
      assert.equal(backend.hits, 1);
      assert.equal((await request(`${front2.url}/`)).body, 'busy');
      assert.equal(busy.hits, 1);
    } finally {
      await lb.close();
      await lb2.close();
      await closeAll(front, backend, front2, busy);
    }
  });

  test('a client leaving during the back-off leaves nothing in flight and no timer behind', async () => {
    const baseline = activeTimers();
    const backend = await listen(reset);
    const lb = loadBalance({ targets: [backend.url], retry: { backoff: { base: 60_000, max: 60_000 } } });
    const front = await listen(lb);
    let retried = false;
    lb.on('retry', () => (retried = true));
    try {
      const client = http.get(`${front.url}/`, { agent: false });
      client.on('error', () => {});
      await waitFor(() => retried);
      assert.equal(lb.stats().inFlight, 1, 'the retry waits, counted in flight');
      client.destroy();
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
      assert.equal(lb.stats().targets[0]!.inFlight, 0);
      const closing = Date.now();
      await lb.close();
      assert.ok(Date.now() - closing < 500, 'close() does not wait for the cancelled back-off');
      assert.equal(backend.hits, 1, 'the retry was never sent');
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
    await delay(10);
    assert.equal(activeTimers(), baseline, 'the back-off timer was cleared');
  });

  test('the timeout deadline still applies during a back-off: 504, and the unsent retry is no target error', async () => {
    const backend = await listen(reset);
    const lb = loadBalance({ targets: [backend.url], timeout: 300, retry: { backoff: { base: 60_000, max: 60_000 } } });
    const front = await listen(lb);
    try {
      const started = Date.now();
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 504);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 1500, `504 after ${elapsed} ms`);
      await waitFor(() => lb.stats().inFlight === 0);
      const stats = lb.stats();
      assert.equal(stats.inFlight, 0);
      assert.equal(stats.targets[0]!.errors, 1, 'only the attempt that was sent failed');
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });

  test('close() during a back-off waits for the retry, which completes', async () => {
    let calls = 0;
    const backend = await listen((req, res) => {
      if (++calls === 1) return void req.socket.destroy();
      res.end('second try');
    });
    const lb = loadBalance({ targets: [backend.url], retry: { backoff: { base: 300, max: 300 } } });
    const front = await listen(lb);
    let closed = false;
    lb.on('retry', () => void lb.close().then(() => (closed = true)));
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.body, 'second try');
      await lb.close();
      assert.ok(closed);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });

  test('the per-try timeout starts when the retry is sent, not during its back-off', async () => {
    let calls = 0;
    const backend = await listen((req, res) => {
      if (++calls === 1) return void req.socket.destroy();
      setTimeout(() => res.end('in time'), 50);
    });
    const lb = loadBalance({ targets: [backend.url], retry: { perTryTimeout: 150, backoff: { base: 1000, max: 1000 } } });
    const front = await listen(lb);
    try {
      assert.equal((await request(`${front.url}/`)).body, 'in time');
      assert.equal(calls, 2);
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });
});
