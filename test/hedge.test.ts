import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { type HedgeInfo, loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { closeAll, delay, listen, request, type TestServer, waitFor } from './helpers.js';

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
        return { p99: percentile(latencies, 0.99), extra: upstream - 420, stats: lb.stats(), cancelled: staller.cancelled(), open: backends.map((b) => b.open()) };
      } finally {
        await lb.close();
        await closeAll(front, ...backends);
      }
    };
    const without = await run(undefined);
    const hedged = await run({});
    const h = hedged.stats.hedging!;
    console.log(`p99 without hedging ${without.p99.toFixed(1)} ms, with ${hedged.p99.toFixed(1)} ms; ${h.sent} hedges (${h.won} won, ${h.cancelled} cancelled, ${h.budgetRefused} refused), learned delay ${h.delay} ms`);
    assert.ok(without.p99 >= 1000, `without hedging p99 ${without.p99}`);
    assert.ok(hedged.p99 <= without.p99 / 3, `p99 with hedging ${hedged.p99} ms, without ${without.p99} ms`);
    assert.equal(without.extra, 0);
    assert.equal(without.stats.hedging, undefined);
    // Extra upstream requests are the hedges, within maxExtraLoad (5%) of the requests.
    assert.equal(hedged.extra, h.sent);
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
});
