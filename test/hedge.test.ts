import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { type HedgeInfo, loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { WebSocket, WebSocketServer } from 'ws';
import { LatencyWindow } from '../lib/proxy/hedge/latency-window.js';
import { closeAll, listen, request, type TestServer, waitFor } from './helpers.js';

/** A backend whose `answer` decides each response; it counts the requests whose client (the balancer) closed them before they were answered. */
async function backendWith(
  answer: (req: IncomingMessage, res: ServerResponse, nth: number) => void,
): Promise<TestServer & { cancelled: () => number; open: () => number }> {
  let nth = 0;
  let cancelled = 0;
  let open = 0;
  const server = await listen((req, res) => {
    nth++;
    open++;
    res.on('close', () => {
      open--;
      if (!res.writableFinished) cancelled++;
    });
    req.resume();
    answer(req, res, nth);
  });
  return Object.assign(server, { cancelled: () => cancelled, open: () => open });
}

function after(ms: number, name: string) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    const timer = setTimeout(() => res.end(name), ms);
    res.on('close', () => clearTimeout(timer));
  };
}

const answers = (name: string) => (_req: IncomingMessage, res: ServerResponse) => res.end(name);

const first = { name: 'first', pick: (targets: readonly unknown[]) => targets[0] } as unknown as LoadBalanceOptions['strategy'];

async function setup(backends: TestServer[], options: LoadBalanceOptions) {
  const lb = loadBalance({ targets: backends.map((b) => b.url), strategy: first, ...options });
  const front = await listen(lb);
  const hedges: HedgeInfo[] = [];
  lb.on('hedge', (info) => hedges.push(info));
  return { lb, front, hedges, close: async () => (await lb.close(), await closeAll(front, ...backends)) };
}

/** `total` GETs from `clients` concurrent clients, one after another each; their latencies, ms. */
async function load(url: string, total: number, clients: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const client = async () => {
    while (next < total) {
      next++;
      const start = performance.now();
      const reply = await request(url);
      assert.equal(reply.status, 200);
      latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return latencies.sort((a, b) => a - b);
}

const percentile = (sorted: number[], p: number) => sorted[Math.ceil(p * sorted.length) - 1]!;

describe('hedge', () => {
  test('one of three backends stalling 1 s on 5% of its requests: p99 with hedging is under a third of p99 without, within the 5% budget', async () => {
    const run = async (hedge: LoadBalanceOptions['hedge']) => {
      // Every 20th request to the staller waits a second.
      const staller = await backendWith((req, res, nth) => (nth % 20 === 0 ? after(1000, 'staller')(req, res) : res.end('staller')));
      const others = [await backendWith(answers('b')), await backendWith(answers('c'))];
      const backends = [staller, ...others];
      const lb = loadBalance({ targets: backends.map((b) => b.url), hedge });
      const front = await listen(lb);
      try {
        const latencies = await load(front.url, 420, 10);
        await waitFor(() => lb.stats().inFlight === 0);
        const upstream = backends.reduce((n, b) => n + b.hits, 0);
        await waitFor(() => backends.every((b) => b.open() === 0));
        return {
          p99: percentile(latencies, 0.99),
          extra: upstream - 420,
          stats: lb.stats(),
          cancelled: staller.cancelled(),
          open: backends.map((b) => b.open()),
        };
      } finally {
        await lb.close();
        await closeAll(front, ...backends);
      }
    };
    const without = await run(undefined);
    const hedged = await run({});
    const h = hedged.stats.hedging!;
    console.log(
      `p99 without hedging ${without.p99.toFixed(1)} ms, with ${hedged.p99.toFixed(1)} ms; ${h.sent} hedges (${h.won} won, ${h.cancelled} cancelled, ${h.budgetRefused} refused), learned delay ${h.delay} ms`,
    );
    assert.ok(without.p99 >= 1000, `without hedging p99 ${without.p99}`);
    assert.ok(hedged.p99 <= without.p99 / 3, `p99 with hedging ${hedged.p99} ms, without ${without.p99} ms`);
    assert.equal(without.extra, 0);
    assert.equal(without.stats.hedging, undefined);
    // Extra upstream requests are the hedges that reached a backend before the other attempt answered, within maxExtraLoad (5%) of the requests.
    assert.ok(hedged.extra <= h.sent);
    assert.ok(h.sent <= Math.ceil(420 * 0.05), `${h.sent} hedges for 420 requests`);
    assert.ok(h.sent > 0 && h.won > 0);
    // Each stalled request the hedge answered was cancelled on the staller: it saw its connection close.
    assert.ok(hedged.cancelled >= 1);
    assert.ok(h.cancelled >= hedged.cancelled);
    assert.equal(hedged.stats.inFlight, 0);
    assert.deepEqual(hedged.open, [0, 0, 0]);
    assert.deepEqual(
      hedged.stats.targets.map((t) => [t.inFlight, t.errors, t.state]),
      [
        [0, 0, 'up'],
        [0, 0, 'up'],
        [0, 0, 'up'],
      ],
    );
  });

  test('the loser is cancelled: its backend sees the close, no socket stays open, and its target is not failed for it', async () => {
    const a = await backendWith(after(500, 'a'));
    const b = await backendWith(answers('b'));
    const t = await setup([a, b], { hedge: { delay: 30, maxExtraLoad: 1 } });
    try {
      // Five in a row: were a cancellation a failure, outlier detection (3 consecutive) would eject a.
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        const reply = await request(`${t.front.url}/${i}`);
        assert.equal(reply.body, 'b');
        assert.ok(performance.now() - start < 400);
      }
      await waitFor(() => a.open() === 0 && a.sockets.size === 0);
      assert.equal(a.cancelled(), 5);
      assert.equal(a.open(), 0);
      assert.equal(a.sockets.size, 0, 'no connection to the cancelled backend stays open');
      // b's one keep-alive connection served every hedge.
      assert.equal(b.sockets.size, 1);
      const stats = t.lb.stats();
      assert.deepEqual(stats.hedging, { sent: 5, won: 5, cancelled: 5, budgetRefused: 0, noTarget: 0, delay: 30 });
      assert.equal(stats.inFlight, 0);
      assert.equal(stats.retries, 0);
      const [sa, sb] = stats.targets;
      assert.deepEqual([sa!.state, sa!.errors, sa!.inFlight, sa!.total], ['up', 0, 0, 5]);
      assert.deepEqual([sb!.state, sb!.errors, sb!.inFlight, sb!.total], ['up', 0, 0, 5]);
      assert.equal(t.hedges.length, 5);
      assert.equal(t.hedges[0]!.from.key, a.url);
      assert.equal(t.hedges[0]!.to.key, b.url);
      assert.ok(t.hedges[0]!.after >= 29);
    } finally {
      await t.close();
    }
  });

  test('the first attempt answering first wins: the hedge is cancelled', async () => {
    const a = await backendWith(after(120, 'a'));
    const b = await backendWith(after(1000, 'b'));
    const t = await setup([a, b], { hedge: { delay: 30, maxExtraLoad: 1 } });
    try {
      assert.equal((await request(t.front.url)).body, 'a');
      await waitFor(() => b.cancelled() === 1);
      assert.equal(b.cancelled(), 1);
      assert.deepEqual(t.lb.stats().hedging, { sent: 1, won: 0, cancelled: 1, budgetRefused: 0, noTarget: 0, delay: 30 });
      await waitFor(() => t.lb.stats().inFlight === 0);
      assert.equal(t.lb.stats().inFlight, 0);
    } finally {
      await t.close();
    }
  });

  test('POST is never hedged by default; a GET body kept for retries is replayed to the hedge', async () => {
    const seen: string[] = [];
    const slowEcho = (name: string, ms: number) => (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push(`${name}:${req.method}:${body}`);
        after(ms, `${name}:${body}`)(req, res);
      });
    };
    const a = await backendWith(slowEcho('a', 200));
    const b = await backendWith(slowEcho('b', 0));
    const t = await setup([a, b], { hedge: { delay: 30, maxExtraLoad: 1 } });
    try {
      const post = await request(t.front.url, { method: 'POST', body: 'order=1' });
      assert.equal(post.body, 'a:order=1');
      assert.equal(b.hits, 0);
      const get = await request(t.front.url, { method: 'GET', body: 'query', headers: { 'content-length': '5' } });
      assert.equal(get.body, 'b:query');
      assert.deepEqual(seen.slice(0, 3), ['a:POST:order=1', 'a:GET:query', 'b:GET:query']);
      assert.equal(t.lb.stats().hedging!.sent, 1);
    } finally {
      await t.close();
    }
  });

  test('no hedge once the response head is in, even with its body still coming', async () => {
    const a = await backendWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('head-');
      setTimeout(() => res.end('then body'), 200);
    });
    const b = await backendWith(answers('b'));
    const t = await setup([a, b], { hedge: { delay: 30, maxExtraLoad: 1 } });
    try {
      const reply = await request(t.front.url);
      assert.equal(reply.body, 'head-then body');
      assert.equal(b.hits, 0);
      assert.equal(t.lb.stats().hedging!.sent, 0);
    } finally {
      await t.close();
    }
  });

  test('an HTTP/2 client request is hedged like an HTTP/1 one', async () => {
    const a = await backendWith(after(500, 'a'));
    const b = await backendWith(answers('b'));
    const lb = loadBalance({ targets: [a.url, b.url], strategy: first, hedge: { delay: 30, maxExtraLoad: 1 } });
    const server = http2.createServer(lb as never);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (text += c));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      assert.equal(body, 'b');
      await waitFor(() => a.cancelled() === 1);
      assert.equal(a.cancelled(), 1);
      assert.equal(lb.stats().hedging!.won, 1);
    } finally {
      session.close();
      await lb.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeAll(a, b);
    }
  });

  test('a WebSocket upgrade is never hedged, however slow its handshake', async () => {
    const upgrades = [0, 0];
    const slowWs = async (i: number) => {
      const wss = new WebSocketServer({ noServer: true });
      wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo ${m}`)));
      const server = await listen((_req, res) => res.end());
      server.server.on('upgrade', (req, socket, head) => {
        upgrades[i]!++;
        setTimeout(() => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)), 150);
      });
      return server;
    };
    const a = await slowWs(0);
    const b = await slowWs(1);
    const t = await setup([a, b], { hedge: { delay: 10, maxExtraLoad: 1 } });
    t.front.server.on('upgrade', t.lb.upgrade);
    try {
      const ws = new WebSocket(t.front.url.replace('http:', 'ws:'));
      const echo = await new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send('hi'));
        ws.on('message', (m) => resolve(String(m)));
        ws.on('error', reject);
      });
      assert.equal(echo, 'echo hi');
      assert.deepEqual(upgrades, [1, 0]);
      assert.equal(t.lb.stats().hedging!.sent, 0);
      ws.close();
    } finally {
      await t.close();
    }
  });

  describe('with retries', () => {
    const reset = (ms: number) => (req: IncomingMessage) => setTimeout(() => req.socket.destroy(), ms);

    test('the first attempt failing while the hedge runs: the hedge answers, nothing is retried', async () => {
      const a = await backendWith(reset(100));
      const b = await backendWith(after(200, 'b'));
      const c = await backendWith(answers('c'));
      const t = await setup([a, b, c], { hedge: { delay: 30, maxExtraLoad: 1 } });
      try {
        assert.equal((await request(t.front.url)).body, 'b');
        const stats = t.lb.stats();
        assert.equal(c.hits, 0);
        assert.equal(stats.retries, 0);
        assert.deepEqual(
          stats.targets.map((s) => s.errors),
          [1, 0, 0],
        );
        assert.equal(stats.hedging!.won, 1);
        assert.equal(stats.inFlight, 0);
      } finally {
        await t.close();
      }
    });

    test('the hedge failing while the first attempt runs: the first answers, nothing is retried', async () => {
      const a = await backendWith(after(150, 'a'));
      const b = await backendWith(reset(0));
      const c = await backendWith(answers('c'));
      const t = await setup([a, b, c], { hedge: { delay: 30, maxExtraLoad: 1 } });
      try {
        assert.equal((await request(t.front.url)).body, 'a');
        const stats = t.lb.stats();
        assert.equal(c.hits, 0);
        assert.equal(stats.retries, 0);
        assert.deepEqual(
          stats.targets.map((s) => s.errors),
          [0, 1, 0],
        );
        assert.deepEqual([stats.hedging!.won, stats.hedging!.cancelled], [0, 0]);
      } finally {
        await t.close();
      }
    });

    test('a status in retry.onStatus from one attempt while the other runs: the other answers', async () => {
      const a = await backendWith((_req, res) => setTimeout(() => res.writeHead(503).end('busy'), 80));
      const b = await backendWith(after(200, 'b'));
      const c = await backendWith(answers('c'));
      const t = await setup([a, b, c], { hedge: { delay: 30, maxExtraLoad: 1 }, retry: { onStatus: [503] } });
      try {
        const reply = await request(t.front.url);
        assert.deepEqual([reply.status, reply.body], [200, 'b']);
        assert.equal(c.hits, 0);
        assert.equal(t.lb.stats().retries, 0);
      } finally {
        await t.close();
      }
    });

    test('the hedge failing, then the first attempt: the retry goes to a target neither tried', async () => {
      const a = await backendWith(reset(150));
      const b = await backendWith(reset(0));
      const c = await backendWith(answers('c'));
      const t = await setup([a, b, c], { hedge: { delay: 30, maxExtraLoad: 1 } });
      try {
        assert.equal((await request(t.front.url)).body, 'c');
        assert.deepEqual(
          t.lb.stats().targets.map((s) => [s.errors, s.total]),
          [
            [1, 1],
            [1, 1],
            [0, 1],
          ],
        );
      } finally {
        await t.close();
      }
    });

    test('both attempts failing: the last one is retried as usual, on a target neither tried', async () => {
      const a = await backendWith(reset(60));
      const b = await backendWith(reset(120));
      const c = await backendWith(answers('c'));
      const t = await setup([a, b, c], { hedge: { delay: 30, maxExtraLoad: 1 } });
      try {
        assert.equal((await request(t.front.url)).body, 'c');
        const stats = t.lb.stats();
        assert.equal(stats.retries, 1);
        assert.deepEqual(
          stats.targets.map((s) => [s.errors, s.total]),
          [
            [1, 1],
            [1, 1],
            [0, 1],
          ],
        );
      } finally {
        await t.close();
      }
    });
  });

  test('the client leaving, or the deadline passing, cancels both attempts', async () => {
    const a = await backendWith(after(1000, 'a'));
    const b = await backendWith(after(1000, 'b'));
    const t = await setup([a, b], { hedge: { delay: 30, maxExtraLoad: 1 }, timeout: 200 });
    try {
      const start = performance.now();
      const reply = await request(t.front.url);
      assert.equal(reply.status, 504);
      assert.ok(performance.now() - start < 600);
      await waitFor(() => a.cancelled() === 1 && b.cancelled() === 1);
      assert.deepEqual([a.cancelled(), b.cancelled()], [1, 1]);
      // And a client that hangs up mid-race.
      const http = await import('node:http');
      const req = http.get(t.front.url, { agent: false });
      req.on('error', () => {});
      await waitFor(() => b.open() === 1);
      req.destroy();
      await waitFor(() => a.cancelled() === 2 && b.cancelled() === 2);
      assert.deepEqual([a.cancelled(), b.cancelled()], [2, 2]);
      await waitFor(() => t.lb.stats().inFlight === 0);
      const stats = t.lb.stats();
      assert.equal(stats.inFlight, 0);
      assert.deepEqual(
        stats.targets.map((s) => s.inFlight),
        [0, 0],
      );
    } finally {
      await t.close();
    }
  });

  test('the circuit breaker caps hedges as retries: with maxRequests reached none is sent', async () => {
    const a = await backendWith(after(100, 'a'));
    const b = await backendWith(answers('b'));
    const t = await setup([a, b], { hedge: { delay: 30, maxExtraLoad: 1 }, circuitBreaker: { maxRequests: 1 } });
    try {
      assert.equal((await request(t.front.url)).body, 'a');
      assert.equal(b.hits, 0);
      assert.deepEqual([t.lb.stats().hedging!.sent, t.lb.stats().hedging!.noTarget], [0, 1]);
    } finally {
      await t.close();
    }
  });

  test('the budget: hedges stop at maxExtraLoad of the requests', async () => {
    const a = await backendWith(after(60, 'a'));
    const b = await backendWith(answers('b'));
    const t = await setup([a, b], { hedge: { delay: 10, maxExtraLoad: 0.25 } });
    try {
      for (let i = 0; i < 20; i++) await request(t.front.url);
      const h = t.lb.stats().hedging!;
      assert.equal(h.sent, 5);
      assert.equal(h.budgetRefused, 15);
      assert.equal(a.hits + b.hits, 25);
    } finally {
      await t.close();
    }
  });

  test('a learned delay: none until 64 first attempts answered, then their percentile; in metrics and the status page', async () => {
    const a = await backendWith(answers('a'));
    const b = await backendWith(answers('b'));
    const t = await setup([a, b], { hedge: { delay: 'p90', minDelay: 0 } });
    const metrics = await listen(t.lb.metrics());
    const status = await listen(t.lb.statusPage());
    try {
      for (let i = 0; i < 63; i++) await request(t.front.url);
      assert.equal(t.lb.stats().hedging!.delay, null);
      await request(t.front.url);
      const learned = t.lb.stats().hedging!.delay;
      assert.ok(learned !== null && learned > 0 && learned < 1000, String(learned));
      const text = (await request(metrics.url)).body;
      assert.match(text, /^proxy_balancer_hedges_total\{result="sent"\} 0$/m);
      assert.match(text, /^proxy_balancer_hedges_total\{result="budget_refused"\} 0$/m);
      assert.match(text, /^proxy_balancer_hedge_delay_seconds \d/m);
      const json = JSON.parse((await request(`${status.url}/?format=json`)).body);
      assert.equal(json.hedging.delay, learned);
      assert.match((await request(status.url)).body, /Hedges/);
    } finally {
      await closeAll(metrics, status);
      await t.close();
    }
  });

  test('off by default: no figures, no metric families', async () => {
    const a = await backendWith(answers('a'));
    const t = await setup([a], {});
    const metrics = await listen(t.lb.metrics());
    try {
      await request(t.front.url);
      assert.equal(t.lb.stats().hedging, undefined);
      assert.doesNotMatch((await request(metrics.url)).body, /hedge/);
    } finally {
      await metrics.close();
      await t.close();
    }
  });

  test('bad configuration is refused at start-up, naming the option', () => {
    const targets = ['http://127.0.0.1:1'];
    const refused = (hedge: unknown, message: RegExp) =>
      assert.throws(
        () => loadBalance({ targets, hedge } as LoadBalanceOptions),
        (err: Error) => err instanceof TypeError && message.test(err.message),
      );
    refused({ maxExtraLoad: -0.1 }, /options\.hedge\.maxExtraLoad must be a number above 0 and at most 1/);
    refused({ maxExtraLoad: 0 }, /options\.hedge\.maxExtraLoad must be/);
    refused({ maxExtraLoad: 1.5 }, /options\.hedge\.maxExtraLoad must be/);
    refused({ delay: 0, maxExtraLoad: 1 }, /options\.hedge\.delay must be above 0 when hedge\.maxExtraLoad is 1/);
    refused({ delay: -5 }, /options\.hedge\.delay must be a non-negative number of milliseconds/);
    refused({ delay: 'p100' }, /options\.hedge\.delay must be a number of milliseconds or a percentile/);
    refused({ delay: 'p5' }, /options\.hedge\.delay must be/);
    refused({ delay: 'median' }, /options\.hedge\.delay must be/);
    refused({ maxExtraLoad: 0.6 }, /options\.hedge\.maxExtraLoad must be at most 0\.5 without a hedge\.delay/);
    refused({ methods: [] }, /options\.hedge\.methods must be a non-empty array/);
    refused({ minDelay: -1 }, /options\.hedge\.minDelay must be/);
    refused({ dealy: 10 }, /hedge\.dealy/);
    refused(true, /options\.hedge must be an object or false/);
    assert.doesNotThrow(() => loadBalance({ targets, hedge: { delay: 0, maxExtraLoad: 0.5 } }).close());
    assert.doesNotThrow(() => loadBalance({ targets, hedge: { delay: 'p99.9', maxExtraLoad: 1 } }).close());
  });

  test('the learned percentile: nearest rank over the last 512 samples, recomputed every 64', () => {
    const window = new LatencyWindow(90);
    for (let i = 1; i <= 63; i++) window.record(i);
    assert.ok(Number.isNaN(window.value));
    window.record(64);
    assert.equal(window.value, 58); // ceil(0.9 × 64) = 58th of 1..64
    for (let i = 65; i <= 128; i++) window.record(1000 - i);
    // 1..64 and 872..935: the ceil(0.9 × 128) = 116th is 872 + 51.
    assert.equal(window.value, 923);
    // The ring holds the last 512: older samples leave it.
    for (let i = 0; i < 512; i++) window.record(5);
    assert.equal(window.value, 5);
  });
});
