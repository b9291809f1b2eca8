import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { closeAll, delay, listen, rawRequest, request, waitFor } from './helpers.js';
import { observed, percentile } from './overload.js';

function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a CPU-bound route: nothing else runs in this process meanwhile
  }
}

interface Run {
  admitted: number[];
  /** Time the balancer took to answer each shed request, ms (inside the call that brought it). */
  shed: number[];
  retryAfter: Set<string>;
  /** 503s the clients got. */
  refused: number;
  backendHits: number;
  sheddingSeen: boolean;
}

/**
 * One process: a backend, the balancer and a CPU-burning route (150 ms a call) beside it. 10
 * clients send proxied requests for 3 s; for the middle 2 s another client calls the burning route
 * over and over.
 */
async function run(options: Partial<LoadBalanceOptions>): Promise<Run> {
  const up = await listen((req, res) => {
    req.resume();
    res.end('ok');
  });
  const lb = loadBalance({ targets: [up.url], ...options });
  const shed: number[] = [];
  let sheddingSeen = false;
  lb.on('overload', (health) => (sheddingSeen ||= health.reason !== undefined));
  const app = await listen((req, res) => {
    if (req.url === '/burn') {
      burn(150);
      res.end('burnt');
      return;
    }
    const start = performance.now();
    lb(req, res);
    if (res.writableEnded && res.statusCode === 503) shed.push(performance.now() - start);
  });
  const agent = new http.Agent({ keepAlive: true });
  const admitted: number[] = [];
  const retryAfter = new Set<string>();
  let refused = 0;
  try {
    const end = Date.now() + 3000;
    const client = async (): Promise<void> => {
      while (Date.now() < end) {
        const start = performance.now();
        const reply = await request(`${app.url}/api`, { agent });
        if (reply.status === 200) admitted.push(performance.now() - start);
        else {
          assert.equal(reply.status, 503);
          refused++;
          retryAfter.add(String(reply.headers['retry-after']));
        }
        await delay(5);
      }
    };
    const burner = async (): Promise<void> => {
      await delay(500);
      const stop = Date.now() + 2000;
      while (Date.now() < stop) await request(`${app.url}/burn`, { agent });
    };
    await Promise.all([...Array.from({ length: 10 }, client), burner()]);
    return { admitted, shed, retryAfter, refused, backendHits: up.hits, sheddingSeen };
  } finally {
    agent.destroy();
    await lb.close();
    await closeAll(app, up);
  }
}

describe('loadShedding', () => {
  test('a CPU-burning route beside the balancer: shed requests get 503 at once and never reach a backend; admitted ones keep a bounded p99; off, nothing is shed', async () => {
    const on = await run({ loadShedding: { maxEventLoopDelay: 30, sampleInterval: 100 }, retryAfter: 3 });
    const off = await run({});
    console.log(
      `on: admitted ${on.admitted.length} (p50 ${percentile(on.admitted, 50).toFixed(1)} ms, p99 ${percentile(on.admitted, 99).toFixed(1)} ms), ` +
        `shed ${on.shed.length} (answered in ${percentile(on.shed, 50).toFixed(3)} ms p50, ${percentile(on.shed, 99).toFixed(3)} ms p99); ` +
        `off: admitted ${off.admitted.length} (p50 ${percentile(off.admitted, 50).toFixed(1)} ms, p99 ${percentile(off.admitted, 99).toFixed(1)} ms), shed ${off.shed.length}`,
    );
    assert.ok(on.sheddingSeen, 'the overload event reported shedding');
    assert.ok(on.shed.length > 0, 'some requests were shed');
    assert.ok(on.admitted.length > 0, 'others were served');
    assert.deepEqual([...on.retryAfter], ['3']);
    assert.equal(on.backendHits, on.admitted.length, 'a shed request never reached the backend');
    // Every 503 is counted inside the call that brought its request (on.shed); the time of that call
    // is a field read and the answer, but for a scavenge or the OS taking the core.
    assert.equal(on.shed.length, on.refused, 'every 503 was answered inside the call that brought its request');
    assert.ok(percentile(on.shed, 90) < 5, `shed p90 ${percentile(on.shed, 90)} ms`);
    // Every admitted request may wait behind one 150 ms burn, and its client behind another.
    assert.ok(percentile(on.admitted, 99) < 1000, `admitted p99 ${percentile(on.admitted, 99)} ms`);
    assert.equal(off.shed.length, 0);
    assert.equal(off.retryAfter.size, 0);
  });

  test('over a limit, HTTP requests and WebSocket handshakes get 503 with Retry-After; stats and the overload event show the process', async () => {
    const up = await listen((_req, res) => res.end('ok'));
    // Any process is over a 1-byte RSS limit: every request is shed from the first reading on.
    const lb = loadBalance({ targets: [up.url], loadShedding: { maxEventLoopDelay: 0, maxRssBytes: 1, sampleInterval: 20 }, retryAfter: 4 });
    const events: Array<string | undefined> = [];
    lb.on('overload', (health) => events.push(health.reason));
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    try {
      await waitFor(() => lb.stats().process?.shedding === 1);
      const reply = await request(`${front.url}/x`);
      assert.equal(reply.status, 503);
      assert.equal(reply.headers['retry-after'], '4');
      const handshake = await rawRequest(
        front.port,
        'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      assert.match(handshake, /^HTTP\/1\.1 503 /);
      assert.match(handshake, /\r\nretry-after: 4\r\n/i);
      assert.equal(up.hits, 0);
      const stats = lb.stats();
      const health = stats.process!;
      assert.equal(health.reason, 'rssBytes');
      assert.equal(health.shed, 2);
      assert.ok(health.rssBytes > 0 && health.heapUsedBytes > 0);
      assert.ok(health.eventLoopUtilization >= 0 && health.eventLoopUtilization <= 1);
      assert.ok(health.eventLoopDelay >= 0);
      assert.deepEqual(events, ['rssBytes']);
      const seen = await observed(lb);
      assert.match(seen.metrics, /^proxy_balancer_shed_total 2$/m);
      assert.match(seen.metrics, /^proxy_balancer_load_shedding 1$/m);
      assert.match(seen.metrics, /^proxy_balancer_event_loop_delay_seconds \d/m);
      assert.match(seen.metrics, /^proxy_balancer_event_loop_utilization [01]/m);
      assert.match(seen.metrics, /^proxy_balancer_rss_bytes [1-9]\d+$/m);
      assert.match(seen.metrics, /^proxy_balancer_heap_used_bytes [1-9]\d+$/m);
      assert.equal(seen.status.process!.shed, 2);
      assert.equal(seen.status.process!.reason, 'rssBytes');
      assert.match(seen.page, /Event loop delay/);
    } finally {
      await lb.close();
      await closeAll(front, up);
    }
  });

  test('an HTTP/2 request is shed on its stream, before the HTTP/2 request is even adapted; the session lives on', async () => {
    const up = await listen((_req, res) => res.end('ok'));
    const lb = loadBalance({ targets: [up.url], loadShedding: { maxEventLoopDelay: 0, maxRssBytes: 1, sampleInterval: 20 } });
    const server = http2.createServer(lb as never);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    session.on('error', () => {});
    try {
      await waitFor(() => lb.stats().process?.shedding === 1);
      for (let i = 0; i < 2; i++) {
        const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const stream = session.request({ ':path': '/x', ':method': 'POST' });
          stream.on('response', resolve);
          stream.on('error', reject);
          stream.resume();
          stream.end('body');
        });
        assert.equal(head[':status'], 503);
        assert.equal(head['retry-after'], '1');
      }
      assert.equal(session.destroyed, false);
      assert.equal(up.hits, 0);
    } finally {
      session.close();
      await lb.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeAll(up);
    }
  });

  test('bad settings are refused at start-up, naming the option', () => {
    const targets = ['http://127.0.0.1:1'];
    const bad: Array<[unknown, RegExp]> = [
      [{ maxEventLoopDelay: -1 }, /loadShedding\.maxEventLoopDelay must be a non-negative number of milliseconds/],
      [{ maxEventLoopUtilization: 1.2 }, /loadShedding\.maxEventLoopUtilization must be a number at least 0 and at most 1/],
      [{ maxEventLoopUtilization: -0.5 }, /loadShedding\.maxEventLoopUtilization/],
      [{ maxHeapUsedBytes: 1.5 }, /loadShedding\.maxHeapUsedBytes must be a non-negative integer of bytes/],
      [{ maxRssBytes: -1 }, /loadShedding\.maxRssBytes/],
      [{ sampleInterval: 1 }, /loadShedding\.sampleInterval must be at least 10 milliseconds/],
      [{ maxEventLoopDelay: 0 }, /loadShedding must be an object with at least one limit above 0/],
      [{ maxLag: 70 }, /unknown option "loadShedding\.maxLag"/],
      [7, /loadShedding must be true, false or an object/],
    ];
    for (const [loadShedding, message] of bad) {
      assert.throws(
        () => loadBalance({ targets, loadShedding } as never),
        (err: Error) => err instanceof TypeError && message.test(err.message),
      );
    }
  });
});
