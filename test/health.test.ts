import assert from 'node:assert/strict';
import http, { type RequestListener } from 'node:http';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { httpHealthCheck, loadBalance, weightedRoundRobin, type LoadBalancer, type RetryInfo } from 'proxy-balancer';
import { backend, closeAll, delay, listen, request, waitFor, type TestServer } from './helpers.js';

/** Re-listens on a fixed port; `listen()` uses port 0, so this wraps it. */
async function listenOn(port: number, handler: RequestListener): Promise<TestServer> {
  const server = http.createServer();
  const original = server.listen.bind(server);
  (server as unknown as { listen: (...args: unknown[]) => unknown }).listen = (_port: unknown, ...rest: unknown[]) => original(port, ...(rest as []));
  return listen(handler, server);
}

describe('failover with a backend killed under load', () => {
  test('zero failed GETs, ejection after the configured failures, recovery after the health threshold', async () => {
    const a = await backend('a');
    const c = await backend('c');
    let b = await listenOn(0, (req, res) => res.end(req.url === '/health' ? 'ok' : 'b'));
    const bPort = b.port;
    const lb = loadBalance({
      targets: [a.url, b.url, c.url],
      healthCheck: httpHealthCheck({ path: '/health', interval: 50, timeout: 200, healthyThreshold: 2, unhealthyThreshold: 2, jitter: 0 }),
      outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 200 },
    });
    const front = await listen(lb);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const events: string[] = [];
    let ejectedAt = 0;
    let upAt = 0;
    lb.on('ejected', (t, info) => {
      events.push(`ejected ${t.key === b.url ? 'b' : t.key} #${info.ejections}`);
      ejectedAt ||= Date.now();
    });
    lb.on('targetDown', (t, info) => events.push(`down ${t.key === b.url ? 'b' : t.key} (${info.state})`));
    lb.on('targetUp', (t) => {
      events.push(`up ${t.key === b.url ? 'b' : t.key}`);
      upAt = Date.now();
    });
    let failures = 0;
    let served = 0;
    const byBackend: Record<string, number> = {};
    let running = true;
    const worker = async () => {
      while (running) {
        const reply = await new Promise<{ status: number; body: string }>((resolve) => {
          http
            .get(`${front.url}/`, { agent }, (res) => {
              let body = '';
              res.on('data', (c) => (body += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
              res.on('error', () => resolve({ status: -1, body }));
            })
            .on('error', () => resolve({ status: -1, body: '' }));
        });
        if (reply.status === 200) {
          served++;
          byBackend[reply.body] = (byBackend[reply.body] ?? 0) + 1;
        } else failures++;
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    try {
      await delay(200);
      const killedAt = Date.now();
      await b.close();
      await delay(500);
      assert.notEqual(lb.pool.get(`http://127.0.0.1:${bPort}`)?.state, 'up', 'the dead target is out of rotation');
      const servedByBBefore = byBackend.b ?? 0;
      const revivedAt = Date.now();
      b = await listenOn(bPort, (req, res) => res.end(req.url === '/health' ? 'ok' : 'b'));
      await waitFor(() => (byBackend.b ?? 0) > servedByBBefore, 3000);
      const trafficBackAt = Date.now();
      running = false;
      await Promise.all(workers);
      assert.equal(failures, 0, `client failures (served ${served})`);
      assert.ok((byBackend.b ?? 0) > servedByBBefore, 'traffic resumed on the revived backend');
      assert.ok(
        events.some((e) => e.startsWith('ejected b') || e.startsWith('down b')),
        events.join(', '),
      );
      assert.ok(ejectedAt === 0 || ejectedAt - killedAt < 500, `ejected ${ejectedAt - killedAt} ms after the kill`);
      // Two passing checks 50 ms apart (plus the probe in flight) bring it back.
      assert.ok(trafficBackAt - revivedAt < 1000, `traffic back ${trafficBackAt - revivedAt} ms after restart`);
      const stats = lb.stats();
      assert.ok(stats.retries > 0, 'requests caught on the dying backend were retried');
      console.log(
        `# killed-backend run: served ${served}, failed ${failures}, retries ${stats.retries}, ` +
          `ejected ${ejectedAt ? ejectedAt - killedAt : 'n/a'} ms after kill, up ${upAt - revivedAt} ms and traffic ${trafficBackAt - revivedAt} ms after restart; events: ${events.join(', ')}`,
      );
    } finally {
      running = false;
      await Promise.all(workers);
      agent.destroy();
      await lb.close();
      await closeAll(front, a, b, c);
    }
  });
});

describe('active health checks through the balancer', () => {
  for (const [fault, healthHandler] of [
    ['answers 500', (res: http.ServerResponse) => ((res.statusCode = 500), res.end('bad'))],
    ['times out', () => {}],
    ['returns the wrong body', (res: http.ServerResponse) => res.end('degraded')],
  ] as const) {
    test(`a backend whose health path ${fault} goes down after unhealthyThreshold and up after healthyThreshold`, async () => {
      let sick = true;
      let checks = 0;
      const flaky = await listen((req, res) => {
        if (req.url !== '/health') return void res.end('flaky');
        checks++;
        if (sick) (healthHandler as (r: http.ServerResponse) => void)(res);
        else res.end('ok');
      });
      const steady = await listen((req, res) => res.end(req.url === '/health' ? 'ok' : 'steady'));
      const lb = loadBalance({
        targets: [flaky.url, steady.url],
        healthCheck: httpHealthCheck({ path: '/health', expectBody: 'ok', interval: 20, timeout: 60, healthyThreshold: 2, unhealthyThreshold: 3, jitter: 0 }),
      });
      const front = await listen(lb);
      try {
        const down = new Promise<number>((resolve) => lb.once('targetDown', () => resolve(checks)));
        assert.equal(await down, 3, 'down after exactly 3 failing checks');
        assert.equal(lb.stats().targets[0]!.state, 'down');
        assert.equal(lb.stats().targets[0]!.lastCheck?.ok, false);
        for (let i = 0; i < 4; i++) assert.equal((await request(`${front.url}/`)).body, 'steady');
        const before = checks;
        sick = false;
        const up = new Promise<number>((resolve) => lb.once('targetUp', () => resolve(checks)));
        assert.equal((await up) - before, 2, 'up after exactly 2 passing checks');
        const bodies = new Set<string>();
        for (let i = 0; i < 4; i++) bodies.add((await request(`${front.url}/`)).body);
        assert.deepEqual([...bodies].sort(), ['flaky', 'steady']);
      } finally {
        await lb.close();
        await closeAll(front, flaky, steady);
      }
    });
  }

  test('all targets down → 503 with Retry-After, answered at once', async () => {
    const sick = await listen((_req, res) => ((res.statusCode = 503), res.end()));
    const lb = loadBalance({ targets: [sick.url], healthCheck: httpHealthCheck({ interval: 10, unhealthyThreshold: 1, jitter: 0 }), retryAfter: 2 });
    const front = await listen(lb);
    try {
      await waitFor(() => lb.pool.ready.length === 0);
      const started = performance.now();
      const reply = await request(`${front.url}/`);
      const elapsed = performance.now() - started;
      assert.equal(reply.status, 503);
      assert.equal(reply.headers['retry-after'], '2');
      assert.ok(elapsed < 50, `answered in ${elapsed.toFixed(1)} ms`);
    } finally {
      await lb.close();
      await closeAll(front, sick);
    }
  });

  test("a target's own healthCheck replaces the pool's, false turns checks off for it, and pool.add keeps them apart", async () => {
    // Every one answers 503 on /health: only targets probed with the pool's check can go down.
    const probed = new Map<TestServer, number>();
    const sick = async () => {
      const server: TestServer = await listen((req, res) => {
        if (req.url === '/health') probed.set(server, (probed.get(server) ?? 0) + 1);
        res.statusCode = req.url === '/health' ? 503 : 200;
        res.end('x');
      });
      return server;
    };
    const [pooled, own, unchecked, added] = [await sick(), await sick(), await sick(), await sick()];
    const ownProbes: string[] = [];
    const lb = loadBalance({
      targets: [
        pooled.url,
        { url: own.url, healthCheck: { interval: 10, jitter: 0, check: async (t) => (ownProbes.push(t.key), true) } },
        { url: unchecked.url, healthCheck: false },
      ],
      healthCheck: httpHealthCheck({ path: '/health', interval: 10, unhealthyThreshold: 1, jitter: 0 }),
    });
    try {
      lb.pool.add({ url: added.url, healthCheck: false });
      await waitFor(() => lb.pool.get(pooled.url)!.state === 'down' && ownProbes.length >= 2);
      await delay(50);
      assert.deepEqual(
        lb.pool.targets.map((t) => t.state),
        ['down', 'up', 'up', 'up'],
      );
      assert.ok(probed.get(pooled)! >= 1);
      assert.deepEqual([probed.get(own), probed.get(unchecked), probed.get(added)], [undefined, undefined, undefined], 'the pool check probed none of them');
      assert.ok(
        ownProbes.every((key) => key === lb.pool.get(own.url)!.key),
        'the own probe ran for its target only',
      );
    } finally {
      await lb.close();
      await closeAll(pooled, own, unchecked, added);
    }
  });

  test("initialState 'unhealthy' holds traffic until the first check passes; firstHealthCheck() resolves after it", async () => {
    const b = await backend('b');
    const lb = loadBalance({ targets: [b.url], healthCheck: httpHealthCheck({ path: '/', interval: 100, jitter: 0, initialState: 'unhealthy' }) });
    const front = await listen(lb);
    try {
      assert.equal(lb.pool.ready.length, 0);
      assert.equal((await request(`${front.url}/`)).status, 503);
      await lb.firstHealthCheck();
      assert.equal((await request(`${front.url}/`)).body, 'b');
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('panic mode: below panicThreshold traffic goes to every target, and says so', async () => {
    const backends = await Promise.all(
      ['a', 'b', 'c'].map((name) => listen((req, res) => (req.url === '/health' && name !== 'a' ? ((res.statusCode = 500), res.end()) : res.end(name)))),
    );
    const lb = loadBalance({
      targets: backends.map((b) => b.url),
      panicThreshold: 50,
      healthCheck: httpHealthCheck({ path: '/health', interval: 10, unhealthyThreshold: 1, jitter: 0 }),
    });
    const panics: boolean[] = [];
    lb.on('panic', (info) => panics.push(info.active));
    const front = await listen(lb);
    try {
      await waitFor(() => lb.stats().panic);
      assert.equal(lb.stats().panic, true);
      assert.deepEqual(panics, [true]);
      assert.deepEqual(
        lb.stats().targets.map((t) => t.state),
        ['up', 'down', 'down'],
      );
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add((await request(`${front.url}/`)).body);
      assert.deepEqual([...seen].sort(), ['a', 'b', 'c'], 'in panic, down targets get traffic too');
    } finally {
      await lb.close();
      await closeAll(front, ...backends);
    }
  });

  test('close() stops every poller and timer', async () => {
    const b = await backend('b');
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    const lb = loadBalance({
      targets: [b.url],
      healthCheck: httpHealthCheck({ interval: 10, jitter: 0 }),
      slowStart: 1000,
      retry: { perTryTimeout: 1000 },
      timeout: 5000,
    });
    const front = await listen(lb);
    try {
      lb.pool.add('http://127.0.0.1:1'); // ramps: slow start timer
      await request(`${front.url}/`);
      await delay(30);
      await lb.close();
      await delay(20);
      assert.equal(timers(), baseline, 'no timer left behind');
      const hits = b.hits;
      await delay(50);
      assert.equal(b.hits, hits, 'no probe after close');
    } finally {
      await closeAll(front, b);
    }
  });
});

describe('retries', () => {
  async function pair(first: RequestListener, options: Parameters<typeof loadBalance>[0] = {}) {
    const failing = await listen(first);
    const healthy = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`healthy:${req.method}:${Buffer.concat(chunks).length}`));
    });
    const lb = loadBalance({ targets: [failing.url, healthy.url], ...options });
    const front = await listen(lb);
    const retries: RetryInfo[] = [];
    lb.on('retry', (info) => retries.push(info));
    return { failing, healthy, lb, front, retries, close: async () => (await lb.close(), await closeAll(front, failing, healthy)) };
  }
  const reset: RequestListener = (req) => req.socket.destroy();

  test('a GET failing on one target is retried on another; the client never sees the failure', async () => {
    const t = await pair(reset);
    try {
      const reply = await request(`${t.front.url}/`);
      assert.equal(reply.body, 'healthy:GET:0');
      assert.equal(t.retries.length, 1);
      assert.equal(t.retries[0]!.attempt, 2);
      assert.equal(t.lb.stats().retries, 1);
      assert.equal(t.lb.stats().inFlight, 0);
    } finally {
      await t.close();
    }
  });

  test('a listener that throws is reported as a warning, not a crash', async () => {
    const t = await pair(reset);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    t.lb.on('retry', () => {
      throw new Error('listener bug');
    });
    try {
      assert.equal((await request(`${t.front.url}/`)).body, 'healthy:GET:0');
      await delay(5);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /'retry' listener threw: Error: listener bug/);
    } finally {
      process.off('warning', onWarning);
      await t.close();
    }
  });

  test('a PUT body is replayed on the retry', async () => {
    const t = await pair(reset);
    try {
      const reply = await request(`${t.front.url}/`, { method: 'PUT', body: 'x'.repeat(5000) });
      assert.equal(reply.body, 'healthy:PUT:5000');
    } finally {
      await t.close();
    }
  });

  test('a POST is not retried (502) unless POST is opted in', async () => {
    const t = await pair(reset);
    try {
      const reply = await request(`${t.front.url}/`, { method: 'POST', body: 'order' });
      assert.equal(reply.status, 502);
      assert.equal(t.healthy.hits, 0, 'the other backend never saw the POST');
    } finally {
      await t.close();
    }
    const optIn = await pair(reset, { retry: { methods: ['POST'] } });
    try {
      assert.equal((await request(`${optIn.front.url}/`, { method: 'POST', body: 'order' })).body, 'healthy:POST:5');
    } finally {
      await optIn.close();
    }
  });

  test('a body larger than retry.maxBodyBytes is streamed and never retried', async () => {
    const t = await pair(reset, { retry: { maxBodyBytes: 1024 } });
    try {
      const reply = await request(`${t.front.url}/`, { method: 'PUT', body: 'x'.repeat(4096) });
      assert.equal(reply.status, 502);
      assert.equal(t.healthy.hits, 0);
    } finally {
      await t.close();
    }
  });

  test('a reset on a reused keep-alive socket is retried even for POST', async () => {
    // The second request on each upstream connection dies unanswered: what a backend closing an
    // idle keep-alive socket just as the balancer reuses it looks like.
    const served = new WeakSet<Socket>();
    const t = await pair(
      (req, res) => {
        if (served.has(req.socket)) return void req.socket.destroy();
        served.add(req.socket);
        req.resume();
        req.on('end', () => res.end('first'));
      },
      { strategy: { name: 'first-only', pick: (targets) => targets[0] } },
    );
    try {
      assert.equal((await request(`${t.front.url}/`, { method: 'POST', body: 'one' })).body, 'first');
      const reply = await request(`${t.front.url}/`, { method: 'POST', body: 'two' });
      assert.equal(reply.status, 200, 'retried after the stale-socket reset');
      assert.equal(t.retries.length, 1);
    } finally {
      await t.close();
    }
  });

  test('per-try timeout abandons a hanging attempt and retries elsewhere', async () => {
    const t = await pair(() => {}, { retry: { perTryTimeout: 100 } });
    try {
      const started = Date.now();
      const reply = await request(`${t.front.url}/`);
      assert.equal(reply.body, 'healthy:GET:0');
      assert.ok(Date.now() - started < 1000);
    } finally {
      await t.close();
    }
  });

  test('the retry budget stops a retry storm', async () => {
    const t = await pair(reset, {
      retry: { budgetPercent: 0, minRetries: 2 },
      outlierDetection: false,
      strategy: { name: 'first', pick: (targets) => targets[0] },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(`${t.front.url}/`)).status);
      assert.deepEqual(statuses, [200, 200, 502, 502, 502]);
      assert.equal(t.retries.length, 2);
    } finally {
      await t.close();
    }
  });

  test('retry: false turns failover off', async () => {
    const t = await pair(reset, { retry: false, strategy: { name: 'first', pick: (targets) => targets[0] } });
    try {
      assert.equal((await request(`${t.front.url}/`)).status, 502);
    } finally {
      await t.close();
    }
  });
});

describe('passive detection and slow start', () => {
  test('consecutive failures eject a target for a time that grows with repeated ejections, within maxEjectionPercent', async () => {
    const rude = await listen((req) => req.socket.destroy());
    const fine = await backend('fine');
    const lb = loadBalance({
      targets: [rude.url, fine.url],
      retry: false,
      outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 100, maxEjectionPercent: 50 },
      strategy: { name: 'first', pick: (targets) => targets[0] },
    });
    const ejections: number[] = [];
    lb.on('ejected', (_t, info) => ejections.push(info.durationMs));
    const front = await listen(lb);
    try {
      await request(`${front.url}/`);
      await request(`${front.url}/`);
      assert.deepEqual(ejections, [100]);
      assert.equal(lb.stats().targets[0]!.state, 'ejected');
      assert.equal((await request(`${front.url}/`)).body, 'fine', 'ejected target skipped');
      await waitFor(() => lb.stats().targets[0]!.state === 'up');
      await request(`${front.url}/`);
      await request(`${front.url}/`);
      assert.deepEqual(ejections, [100, 200], 'second ejection lasts twice as long');
      assert.equal(lb.stats().targets[0]!.ejections, 2);
    } finally {
      await lb.close();
      await closeAll(front, rude, fine);
    }
  });

  test('maxEjectionPercent keeps part of the pool in rotation', async () => {
    const rude = await Promise.all([0, 1].map(() => listen((req) => req.socket.destroy())));
    const lb = loadBalance({ targets: rude.map((r) => r.url), retry: false, outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 50 } });
    const front = await listen(lb);
    try {
      for (let i = 0; i < 4; i++) await request(`${front.url}/`);
      assert.deepEqual(
        lb
          .stats()
          .targets.map((t) => t.state)
          .sort(),
        ['ejected', 'up'],
      );
    } finally {
      await lb.close();
      await closeAll(front, ...rude);
    }
  });

  test('slow start ramps a new target from 10% of its weight', async () => {
    const old = await backend('old');
    const fresh = await backend('fresh');
    const lb: LoadBalancer = loadBalance({ targets: [old.url], strategy: weightedRoundRobin(), slowStart: 400 });
    const front = await listen(lb);
    try {
      lb.pool.add(fresh.url);
      assert.equal(lb.stats().targets[1]!.effectiveWeight, 0.1);
      assert.equal(lb.stats().targets[1]!.slowStart, true);
      const early: Record<string, number> = {};
      for (let i = 0; i < 22; i++) {
        const { body } = await request(`${front.url}/`);
        early[body] = (early[body] ?? 0) + 1;
      }
      assert.ok((early.fresh ?? 0) <= 6, `fresh got ${early.fresh} of 22 while ramping`);
      await waitFor(() => !lb.stats().targets[1]!.slowStart);
      assert.equal(lb.stats().targets[1]!.effectiveWeight, 1);
      const late: Record<string, number> = {};
      for (let i = 0; i < 10; i++) {
        const { body } = await request(`${front.url}/`);
        late[body] = (late[body] ?? 0) + 1;
      }
      assert.deepEqual(late, { old: 5, fresh: 5 });
    } finally {
      await lb.close();
      await closeAll(front, old, fresh);
    }
  });
});
