import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { loadBalance, type LoadBalanceOptions, Pool, type RetryFailure, type RetryInfo, responseCache, UpstreamStatusError } from 'proxy-balancer';
import { closeAll, deadPort, delay, listen, request, type TestServer, waitFor, cacheOutcome } from './helpers.js';

/** A backend that answers `status` with a body naming it, counting the connections it accepted. */
async function answering(name: string, status: number, extra: Record<string, string> = {}): Promise<TestServer & { connections: () => number }> {
  const server = await listen((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'x-backend': name, 'content-type': 'text/plain', ...extra });
      res.end(`${name}:${status}:${req.method}`);
    });
  });
  let connections = 0;
  server.server.on('connection', () => connections++);
  return Object.assign(server, { connections: () => connections });
}

const first = { name: 'first', pick: (targets: readonly { key: string }[]) => targets[0] } as unknown as LoadBalanceOptions['strategy'];

async function setup(backends: TestServer[], options: LoadBalanceOptions = {}) {
  const lb = loadBalance({ targets: backends.map((b) => b.url), strategy: first, outlierDetection: false, ...options });
  const front = await listen(lb);
  const retries: RetryInfo[] = [];
  lb.on('retry', (info) => retries.push(info));
  return { lb, front, retries, close: async () => (await lb.close(), await closeAll(front, ...backends)) };
}

describe('retry.onStatus', () => {
  test('a 503 from one target is answered by another; the 503 never reaches the client', async () => {
    const a = await answering('a', 503);
    const b = await answering('b', 200);
    const t = await setup([a, b], { retry: { onStatus: [502, 503, 504] } });
    const scrape = await listen(t.lb.metrics());
    try {
      const reply = await request(`${t.front.url}/`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'b:200:GET');
      assert.equal(reply.headers['x-backend'], 'b');
      assert.equal(a.hits, 1);
      assert.equal(t.retries.length, 1);
      const info = t.retries[0]!;
      assert.equal(info.status, 503);
      assert.equal(info.attempt, 2);
      assert.equal(info.from.key, a.url);
      assert.equal(info.to.key, b.url);
      assert.ok(info.error instanceof UpstreamStatusError);
      assert.equal(info.error.message, 'upstream answered 503 Service Unavailable');
      const stats = t.lb.stats();
      assert.equal(stats.retries, 1);
      assert.equal(stats.inFlight, 0);
      assert.deepEqual(
        stats.targets.map((s) => [s.total, s.errors, s.inFlight]),
        [
          [1, 0, 0],
          [1, 0, 0],
        ],
      );
      const metrics = (await request(`${scrape.url}/`)).body;
      assert.match(metrics, /^proxy_balancer_retries_total 1$/m);
      assert.match(metrics, new RegExp(`^proxy_balancer_requests_total\\{target="${a.url}",method="GET",code_class="5xx"\\} 1$`, 'm'));
    } finally {
      await t.close();
      await scrape.close();
    }
  });

  test('unlisted statuses and an empty list relay the response as it is', async () => {
    const a = await answering('a', 500);
    const b = await answering('b', 200);
    const t = await setup([a, b], { retry: { onStatus: [503] } });
    const off = await setup([await answering('c', 503), await answering('d', 200)]);
    try {
      assert.equal((await request(`${t.front.url}/`)).status, 500);
      assert.equal(b.hits, 0);
      assert.equal((await request(`${off.front.url}/`)).status, 503, 'the default list is empty');
      assert.equal(off.retries.length + t.retries.length, 0);
    } finally {
      await t.close();
      await off.close();
    }
  });

  test('a POST answered 503 is relayed as it is, not retried', async () => {
    const a = await answering('a', 503, { 'retry-after': '0', 'x-detail': 'busy' });
    const b = await answering('b', 200);
    const t = await setup([a, b], { retry: { onStatus: [503] } });
    try {
      const reply = await request(`${t.front.url}/`, { method: 'POST', body: 'order' });
      assert.equal(reply.status, 503);
      assert.equal(reply.body, 'a:503:POST');
      assert.equal(reply.headers['x-detail'], 'busy');
      assert.equal(reply.headers['retry-after'], '0');
      assert.equal(b.hits, 0, 'the other backend never saw the POST');
      assert.equal(t.retries.length, 0);
    } finally {
      await t.close();
    }
  });

  test('every target 503: the last attempt’s response is relayed intact, head and body', async () => {
    const a = await answering('a', 503);
    const b = await answering('b', 502);
    const c = await answering('c', 503, { 'x-detail': 'from c', 'retry-after': '7' });
    const t = await setup([a, b, c], { retry: { onStatus: [502, 503], retries: 2, maxRetryAfter: 0 } });
    try {
      const reply = await request(`${t.front.url}/`);
      assert.equal(reply.status, 503);
      assert.equal(reply.body, 'c:503:GET');
      assert.equal(reply.headers['x-backend'], 'c');
      assert.equal(reply.headers['x-detail'], 'from c');
      assert.equal(reply.headers['retry-after'], '7');
      assert.deepEqual([a.hits, b.hits, c.hits], [1, 1, 1]);
      assert.deepEqual(
        t.retries.map((r) => r.status),
        [503, 502],
      );
      assert.equal(t.lb.stats().inFlight, 0);
    } finally {
      await t.close();
    }
  });

  test('retries and the retry budget are respected', async () => {
    const a = await answering('a', 503);
    const b = await answering('b', 200);
    const t = await setup([a, b], { retry: { onStatus: [503], budgetPercent: 0, minRetries: 2 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await request(`${t.front.url}/`)).status);
      assert.deepEqual(statuses, [200, 200, 503, 503, 503]);
      assert.equal(t.retries.length, 2);
      assert.equal(b.hits, 2);
    } finally {
      await t.close();
    }
    const none = await setup([await answering('c', 503), await answering('d', 200)], { retry: { onStatus: [503], retries: 0 } });
    try {
      assert.equal((await request(`${none.front.url}/`)).status, 503, 'retries: 0 relays the first answer');
    } finally {
      await none.close();
    }
  });

  test('a small discarded body is drained so its keep-alive connection is reused; a large one is destroyed', async () => {
    const small = await answering('small', 503);
    const big = await listen((req, res) => {
      req.resume();
      res.writeHead(503, req.url === '/declared' ? { 'content-length': 100_000 } : {});
      res.end(Buffer.alloc(100_000, 'x'));
    });
    let bigConnections = 0;
    big.server.on('connection', () => bigConnections++);
    const ok = await answering('ok', 200);
    const t = await setup([small, ok], { retry: { onStatus: [503] } });
    const u = await setup([big, ok], { retry: { onStatus: [503] } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${t.front.url}/`)).body, 'ok:200:GET');
      for (const path of ['/declared', '/chunked', '/declared', '/chunked']) assert.equal((await request(`${u.front.url}${path}`)).body, 'ok:200:GET');
      assert.equal(small.connections(), 1, 'one upstream connection for three drained (chunked) 503s');
      assert.equal(bigConnections, 4, 'a body over 64 KiB, declared or chunked, is not read to its end: its connection is closed');
    } finally {
      await t.close();
      await u.close();
    }
  });

  test('other statuses stream at once: the first byte of a slow 200 arrives before its end', async () => {
    const slow = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      setTimeout(() => res.end('last'), 400);
    });
    const t = await setup([slow], { retry: { onStatus: [500, 502, 503, 504] } });
    try {
      const started = Date.now();
      const { firstByte, body, end } = await new Promise<{ firstByte: number; body: string; end: number }>((resolve, reject) => {
        http
          .get(`${t.front.url}/`, { agent: false }, (res) => {
            let firstByte = 0;
            let body = '';
            res.on('data', (c: Buffer) => {
              firstByte ||= Date.now() - started;
              body += c.toString();
            });
            res.on('end', () => resolve({ firstByte, body, end: Date.now() - started }));
          })
          .on('error', reject);
      });
      assert.equal(body, 'first last');
      assert.ok(firstByte < 200, `first byte after ${firstByte} ms`);
      assert.ok(end >= 390, `end after ${end} ms`);
    } finally {
      await t.close();
    }
  });

  test('with the response cache: the retried answer is cached, the discarded 503 never is', async () => {
    const a = await answering('a', 503, { 'cache-control': 'max-age=60' });
    const b = await answering('b', 200, { 'cache-control': 'max-age=60' });
    const t = await setup([a, b], { retry: { onStatus: [503] }, cache: responseCache() });
    try {
      const miss = await request(`${t.front.url}/page`);
      assert.equal(miss.body, 'b:200:GET');
      assert.equal(cacheOutcome(miss.headers), 'MISS');
      const hit = await request(`${t.front.url}/page`);
      assert.equal(hit.body, 'b:200:GET');
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.deepEqual([a.hits, b.hits], [1, 1]);
    } finally {
      await t.close();
    }
  });

  test('with maxConnections: a retry never waits behind a full target (the 503 is relayed), and slots are released', async () => {
    const a = await answering('a', 503);
    let release: (() => void) | undefined;
    const b = await listen((req, res) => {
      if (req.url === '/slow') release = () => res.end('slow done');
      else res.end('b');
    });
    const byPath = { name: 'by-path', pick: (targets: readonly unknown[], req: http.IncomingMessage) => targets[req.url === '/slow' ? 1 : 0] };
    const t = await setup([a, b], { retry: { onStatus: [503] }, maxConnections: 1, strategy: byPath as LoadBalanceOptions['strategy'] });
    try {
      const slow = request(`${t.front.url}/slow`);
      await waitFor(() => release !== undefined);
      assert.equal((await request(`${t.front.url}/`)).status, 503, 'b is at maxConnections');
      release!();
      assert.equal((await slow).body, 'slow done');
      assert.equal((await request(`${t.front.url}/`)).body, 'b');
      const stats = t.lb.stats();
      assert.equal(stats.inFlight, 0);
      assert.deepEqual(
        stats.targets.map((s) => [s.inFlight, s.queued]),
        [
          [0, 0],
          [0, 0],
        ],
      );
    } finally {
      await t.close();
    }
  });
});

describe('Retry-After on a 503 holds its target off', () => {
  test('delta-seconds: the target gets no request for that long, then traffic again', async () => {
    let busy = true;
    const a = await listen((_req, res) => {
      if (busy) {
        busy = false;
        res.writeHead(503, { 'retry-after': '1' });
        res.end('busy');
        return;
      }
      res.end('a');
    });
    const b = await answering('b', 200);
    const t = await setup([a, b], { retry: { onStatus: [503] }, strategy: undefined });
    try {
      const started = Date.now();
      const bodies: string[] = [];
      // Round robin: the first request lands on a (503, retried on b).
      for (let i = 0; i < 6; i++) bodies.push((await request(`${t.front.url}/`)).body);
      assert.deepEqual(bodies, Array(6).fill('b:200:GET'));
      assert.equal(a.hits, 1);
      const stats = t.lb.stats();
      assert.equal(stats.ready, 1);
      const until = stats.targets[0]!.heldOffUntil;
      assert.ok(until >= started + 900 && until <= Date.now() + 1000, `held off until +${until - started} ms`);
      assert.equal(stats.targets[0]!.state, 'up');
      assert.ok(Date.now() - started < 900, 'the requests above ran inside the hold-off');
      await waitFor(() => t.lb.stats().ready === 2, 2000);
      assert.ok(Date.now() - started >= 990, `back after ${Date.now() - started} ms`);
      assert.equal(t.lb.stats().targets[0]!.heldOffUntil, 0);
      const after: string[] = [];
      for (let i = 0; i < 4; i++) after.push((await request(`${t.front.url}/`)).body);
      assert.ok(after.includes('a'), `a serves again: ${after.join(',')}`);
    } finally {
      await t.close();
    }
  });

  test('an HTTP-date is honoured, capped at maxRetryAfter', async () => {
    const a = await answering('a', 503, { 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() });
    const b = await answering('b', 200);
    const t = await setup([a, b], { retry: { onStatus: [503], maxRetryAfter: 300 } });
    try {
      const started = Date.now();
      assert.equal((await request(`${t.front.url}/`)).body, 'b:200:GET');
      const until = t.lb.stats().targets[0]!.heldOffUntil;
      assert.ok(until > started && until <= Date.now() + 300, `capped hold-off: +${until - started} ms`);
      assert.equal((await request(`${t.front.url}/`)).body, 'b:200:GET', 'strategy "first" skips the held target');
      assert.equal(a.hits, 1);
      await waitFor(() => t.lb.stats().ready === 2, 1000);
      assert.ok(Date.now() - started >= 290);
      await request(`${t.front.url}/`);
      assert.equal(a.hits, 2, 'the target is picked again after the hold-off');
    } finally {
      await t.close();
    }
  });

  test('a hold-off never empties the snapshot: a single target keeps serving; maxRetryAfter: 0 ignores Retry-After', async () => {
    const only = await answering('only', 503, { 'retry-after': '60' });
    const t = await setup([only], { retry: { onStatus: [503] } });
    const a = await answering('a', 503, { 'retry-after': '60' });
    const b = await answering('b', 200);
    const u = await setup([a, b], { retry: { onStatus: [503], maxRetryAfter: 0 } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${t.front.url}/`)).status, 503);
      assert.equal(only.hits, 3, 'the only target still gets every request');
      assert.equal(t.lb.stats().ready, 1);
      assert.ok(t.lb.stats().targets[0]!.heldOffUntil > Date.now());
      for (let i = 0; i < 3; i++) assert.equal((await request(`${u.front.url}/`)).body, 'b:200:GET');
      assert.equal(a.hits, 3, 'Retry-After ignored: the first target is still picked');
      assert.equal(u.lb.stats().targets[0]!.heldOffUntil, 0);
    } finally {
      await t.close();
      await u.close();
    }
  });
});

describe('the pool under a hold-off', () => {
  test('held targets leave the snapshot while another is ready, come back when none is, and still count as up for panic mode', () => {
    const pool = new Pool(['http://a.test', 'http://b.test', 'http://c.test'], 50);
    const [a, b, c] = pool.targets;
    assert.ok(a && b && c);
    const keys = () => pool.ready.map((t) => t.key);
    pool.setHeldOff(a, true);
    pool.setHeldOff(b, true);
    assert.deepEqual(keys(), ['http://c.test']);
    assert.equal(pool.panic, false, 'held targets are up: no panic');
    assert.equal(a.state, 'up');
    pool.setEjected(c, true);
    assert.deepEqual(keys(), ['http://a.test', 'http://b.test'], 'no other target ready: the held ones take traffic');
    pool.setHeldOff(a, false);
    assert.deepEqual(keys(), ['http://a.test']);
    pool.setEjected(a, true);
    assert.equal(pool.panic, true, 'one of three up: panic');
    assert.deepEqual(keys(), ['http://a.test', 'http://b.test', 'http://c.test'], 'panic mode sends to every target, held or not');
    pool.remove(b);
    pool.setHeldOff(b, false);
    assert.equal(pool.targets.length, 2);
  });
});

describe('retry.condition', () => {
  test('false vetoes a retry; it sees the status, the attempt and the target', async () => {
    const a = await answering('a', 503);
    const b = await answering('b', 200);
    const seen: RetryFailure[] = [];
    const t = await setup([a, b], {
      retry: {
        onStatus: [503],
        condition: (failure, req) => {
          seen.push(failure);
          return req.url === '/veto' ? false : undefined;
        },
      },
    });
    try {
      const vetoed = await request(`${t.front.url}/veto`);
      assert.equal(vetoed.status, 503);
      assert.equal(vetoed.body, 'a:503:GET');
      assert.equal(b.hits, 0);
      assert.equal((await request(`${t.front.url}/other`)).body, 'b:200:GET', 'undefined keeps the default');
      assert.equal(seen.length, 2);
      assert.equal(seen[0]!.status, 503);
      assert.equal(seen[0]!.error, undefined);
      assert.equal(seen[0]!.attempt, 1);
      assert.equal(seen[0]!.target.key, a.url);
    } finally {
      await t.close();
    }
  });

  test('true allows a POST (its body replayed); it sees the error code of a failure', async () => {
    const a = await answering('a', 503);
    const echo = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => res.end(`echo:${req.method}:${body}`));
    });
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const seen: RetryFailure[] = [];
    const lb = loadBalance({
      targets: [a.url, dead, echo.url],
      strategy: first,
      outlierDetection: false,
      retry: {
        onStatus: [503],
        backoff: false,
        condition: (failure) => {
          seen.push(failure);
          return true;
        },
      },
    });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`, { method: 'POST', body: 'payload' });
      assert.equal(reply.body, 'echo:POST:payload');
      assert.equal(seen.length, 2);
      assert.equal(seen[0]!.status, 503);
      assert.equal(seen[1]!.status, undefined);
      assert.equal(seen[1]!.error?.code, 'ECONNREFUSED');
      assert.equal(seen[1]!.attempt, 2);
      assert.equal(seen[1]!.target.key, dead);
    } finally {
      await lb.close();
      await closeAll(front, a, echo);
    }
  });

  test('a hook that throws is a warning, and the default decision applies', async () => {
    const a = await answering('a', 503);
    const b = await answering('b', 200);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const t = await setup([a, b], {
      retry: {
        onStatus: [503],
        condition: () => {
          throw new Error('hook bug');
        },
      },
    });
    try {
      assert.equal((await request(`${t.front.url}/`)).body, 'b:200:GET');
      assert.equal((await request(`${t.front.url}/`, { method: 'POST', body: 'x' })).status, 503);
      await delay(5);
      assert.equal(warnings.length, 2);
      assert.match(warnings[0]!.message, /retry\.condition threw; the default retry decision applies: Error: hook bug/);
    } finally {
      process.off('warning', onWarning);
      await t.close();
    }
  });
});

describe('retry option validation', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ onStatus: [200] }, /options\.retry\.onStatus must be an array of status codes from 400 to 599, got \[200\]/],
    [{ onStatus: ['503'] }, /options\.retry\.onStatus must be an array of status codes from 400 to 599, got \["503"\]/],
    [{ onStatus: 503 }, /options\.retry\.onStatus must be an array .*, got 503/],
    [{ maxRetryAfter: -1 }, /options\.retry\.maxRetryAfter must be a non-negative integer of milliseconds, got -1/],
    [{ backoff: 'fast' }, /options\.retry\.backoff must be an object or false, got "fast"/],
    [{ backoff: { base: 0 } }, /options\.retry\.backoff\.base must be a positive integer of milliseconds, got 0/],
    [{ backoff: { base: 100, max: 50 } }, /options\.retry\.backoff\.max must be at least retry\.backoff\.base \(100 milliseconds\), got 50/],
    [{ condition: 'yes' }, /options\.retry\.condition must be a function, got string/],
  ];
  for (const [retry, message] of cases) {
    test(`rejects retry: ${JSON.stringify(retry)}`, () => {
      assert.throws(
        () => loadBalance({ targets: ['http://a.example'], retry: retry as LoadBalanceOptions['retry'] }),
        (err: Error) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
  test('accepts 4xx statuses (NGINX allows 403, 404, 429) and a base above the default max', async () => {
    const lb = loadBalance({ targets: ['http://a.example'], retry: { onStatus: [403, 404, 429, 503], backoff: { base: 500 } } });
    await lb.close();
  });
});
