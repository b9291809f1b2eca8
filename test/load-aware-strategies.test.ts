import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { loadBalance, leastRequest, peakEwma, roundRobin, type Outcome, type Strategy, Target } from 'proxy-balancer';
import { closeAll, delay, listen, type TestServer } from './helpers.js';

function makeTargets(weights: readonly number[]): Target[] {
  return weights.map((weight, i) => new Target(new URL(`http://127.0.0.1:${4000 + i}`), weight));
}

function answered(latency: number): Outcome {
  return { status: 200, latency, error: undefined };
}

function shares(strategy: Strategy, targets: readonly Target[], picks: number): number[] {
  const ready = Object.freeze([...targets]);
  const out = targets.map(() => 0);
  for (let i = 0; i < picks; i++) out[targets.indexOf(strategy.pick(ready, {} as http.IncomingMessage)!)]++;
  return out;
}

describe('peakEwma', () => {
  test('scores latency × (in flight + 1) / weight and picks the cheaper of two', () => {
    const strategy = peakEwma();
    const [fast, slow] = makeTargets([1, 1]);
    strategy.onEnd!(fast, answered(5));
    strategy.onEnd!(slow, answered(50));
    const ready = Object.freeze([fast, slow]);
    for (let i = 0; i < 20; i++) assert.equal(strategy.pick(ready, {} as http.IncomingMessage), fast);
    fast.inFlight = 10;
    assert.equal(strategy.pick(ready, {} as http.IncomingMessage), slow, '5 ms × 11 costs more than 50 ms × 1');
    const stats = strategy.targetStats!(fast)!;
    assert.ok(Math.abs(stats.latency! - 5) < 0.01 && Math.abs(stats.score - 55) < 0.1, JSON.stringify(stats));
  });

  test('jumps to a slower sample at once, comes down with time, and starts at defaultLatency', async () => {
    const strategy = peakEwma({ decay: 20, defaultLatency: 7 });
    const [target] = makeTargets([1]);
    assert.ok(Math.abs(strategy.targetStats!(target)!.latency! - 7) < 0.1, 'unsampled: the default');
    strategy.onEnd!(target, answered(10));
    strategy.onEnd!(target, answered(100));
    assert.ok(strategy.targetStats!(target)!.latency! > 99, 'peak taken at once');
    await delay(40);
    strategy.onEnd!(target, answered(10));
    // 100 × e^-2 + 10 × (1 - e^-2) ≈ 22 after 40 ms with a 20 ms time constant (more if the timer ran late).
    const after = strategy.targetStats!(target)!.latency!;
    assert.ok(after > 10 && after < 30, `estimate ${after}`);
    strategy.onEnd!(target, { status: 0, latency: Number.NaN, error: new Error('reset') });
    assert.ok(strategy.targetStats!(target)!.latency! <= after, 'a failure without a head is no sample');
    await delay(60);
    assert.ok(strategy.targetStats!(target)!.latency! < after / 5, 'fades while no sample comes');
  });

  test('a slow sample among many fast ones is not averaged away', () => {
    const strategy = peakEwma();
    const [target] = makeTargets([1]);
    for (let i = 0; i < 1000; i++) strategy.onEnd!(target, answered(2));
    strategy.onEnd!(target, answered(80));
    strategy.onEnd!(target, answered(2));
    assert.ok(strategy.targetStats!(target)!.latency! > 79);
  });

  test('options are validated, naming the option', () => {
    for (const decay of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '10']) {
      assert.throws(() => peakEwma({ decay } as never), { name: 'TypeError', message: /^peakEwma: options\.decay must be a positive number of milliseconds/ });
    }
    for (const defaultLatency of [-1, Number.NaN, null]) {
      assert.throws(() => peakEwma({ defaultLatency } as never), { name: 'TypeError', message: /^peakEwma: options\.defaultLatency must be/ });
    }
    assert.throws(() => peakEwma({ decayTime: 5 } as never), {
      name: 'TypeError',
      message: /peakEwma: unknown option "decayTime" \(expected one of decay, defaultLatency\)/,
    });
    assert.throws(() => peakEwma(5 as never), { name: 'TypeError', message: /peakEwma: options must be an object/ });
    assert.equal(peakEwma({ defaultLatency: 0 }).name, 'peak-ewma');
  });
});

describe('leastRequest', () => {
  test('equal weights: the fewest in flight of choiceCount sampled targets', () => {
    const targets = makeTargets([1, 1, 1, 1]);
    targets[0].inFlight = 5;
    targets[1].inFlight = 1;
    targets[2].inFlight = 3;
    targets[3].inFlight = 2;
    const two = shares(leastRequest(), targets, 6000);
    assert.equal(two[0], 0, 'the most loaded never wins a pair');
    // Of the 6 pairs, target 1 wins the 3 it is in, target 3 two, target 2 one.
    assert.ok(Math.abs(two[1] - 3000) < 250 && Math.abs(two[3] - 2000) < 250 && Math.abs(two[2] - 1000) < 200, `${two}`);
    assert.deepEqual(shares(leastRequest({ choiceCount: 4 }), targets, 100), [0, 100, 0, 0], 'sampling all is the minimum');
  });

  test('unequal weights: turns in proportion to weight / (in flight + 1) ^ bias', () => {
    const targets = makeTargets([1, 2, 3]);
    assert.deepEqual(shares(leastRequest(), targets, 6000), [1000, 2000, 3000], 'no load: shares follow weights');
    targets[2].inFlight = 2;
    // Effective weights 1, 2, 3 / 3 = 1: shares 1 : 2 : 1.
    const loaded = shares(leastRequest(), targets, 4000);
    assert.ok(Math.abs(loaded[0] - 1000) <= 2 && Math.abs(loaded[1] - 2000) <= 2 && Math.abs(loaded[2] - 1000) <= 2, `${loaded}`);
    // Bias 2: 3 / 9 → shares 3 : 6 : 1.
    const squared = shares(leastRequest({ activeRequestBias: 2 }), targets, 10_000);
    assert.ok(Math.abs(squared[0] - 3000) <= 3 && Math.abs(squared[1] - 6000) <= 3 && Math.abs(squared[2] - 1000) <= 3, `${squared}`);
    assert.deepEqual(shares(leastRequest({ activeRequestBias: 0 }), targets, 600), [100, 200, 300], 'bias 0 ignores load');
    assert.equal(leastRequest().targetStats!(targets[2])!.score, 1, '(2 + 1) / 3');
  });

  test('options are validated, naming the option', () => {
    for (const choiceCount of [1, 0, 2.5, -2, Number.NaN, '2']) {
      assert.throws(() => leastRequest({ choiceCount } as never), {
        name: 'TypeError',
        message: /^leastRequest: options\.choiceCount must be an integer of at least 2/,
      });
    }
    for (const activeRequestBias of [-0.5, Number.NaN, Number.POSITIVE_INFINITY, true]) {
      assert.throws(() => leastRequest({ activeRequestBias } as never), {
        name: 'TypeError',
        message: /^leastRequest: options\.activeRequestBias must be a number/,
      });
    }
    assert.throws(() => leastRequest({ choices: 3 } as never), {
      name: 'TypeError',
      message: /leastRequest: unknown option "choices" \(expected one of choiceCount, activeRequestBias\)/,
    });
    assert.throws(() => leastRequest([] as never), { name: 'TypeError', message: /leastRequest: options must be an object/ });
  });
});

describe('a slow backend under concurrent load', () => {
  const REQUESTS = 300;
  const CONCURRENCY = 10;

  async function slowShare(backends: TestServer[], slow: TestServer, strategy: Strategy): Promise<{ share: number; balancing: unknown }> {
    const lb = loadBalance({ targets: backends.map((b) => b.url), strategy });
    const front = await listen(lb);
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const byBackend = new Map<string, number>();
    let sent = 0;
    const worker = async (): Promise<void> => {
      while (sent < REQUESTS) {
        sent++;
        const name = await new Promise<string>((resolve, reject) => {
          http
            .get(front.url, { agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(String(res.headers['x-backend'])));
            })
            .on('error', reject);
        });
        byBackend.set(name, (byBackend.get(name) ?? 0) + 1);
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const served = [...byBackend.values()].reduce((a, b) => a + b, 0);
      assert.equal(served, REQUESTS);
      const slowTarget = lb.stats().targets.find((t) => t.url === slow.url)!;
      return { share: (byBackend.get(slow.url) ?? 0) / REQUESTS, balancing: slowTarget.balancing };
    } finally {
      agent.destroy();
      await lb.close();
      await front.close();
    }
  }

  test('peakEwma and leastRequest send it under 10% of requests where roundRobin sends it a third', async () => {
    const named = (answer: (res: http.ServerResponse, url: string) => void) => {
      const state = { url: '' };
      return { state, handler: (_req: http.IncomingMessage, res: http.ServerResponse) => answer(res, state.url) };
    };
    const reply = (res: http.ServerResponse, url: string): void => {
      res.setHeader('x-backend', url);
      res.end('ok');
    };
    const [a, b, c] = [named(reply), named(reply), named((res, url) => setTimeout(reply, 50, res, url))];
    const backends = await Promise.all([listen(a.handler), listen(b.handler), listen(c.handler)]);
    [a.state.url, b.state.url, c.state.url] = backends.map((s) => s.url);
    const slow = backends[2];
    try {
      const rr = await slowShare(backends, slow, roundRobin());
      const ewma = await slowShare(backends, slow, peakEwma());
      const least = await slowShare(backends, slow, leastRequest());
      console.log(`share of requests to the slow backend: roundRobin ${rr.share}, peakEwma ${ewma.share}, leastRequest ${least.share}`);
      assert.ok(Math.abs(rr.share - 1 / 3) < 0.02, `roundRobin gave the slow backend ${rr.share}`);
      assert.ok(ewma.share < 0.1, `peakEwma gave the slow backend ${ewma.share}`);
      assert.ok(least.share < 0.1, `leastRequest gave the slow backend ${least.share}`);
      assert.equal(rr.balancing, undefined, 'roundRobin balances by nothing it could show');
      const shown = ewma.balancing as { latency: number; score: number };
      assert.ok(shown.latency > 40, `peakEwma shows the slow backend's estimate: ${JSON.stringify(shown)}`);
    } finally {
      await closeAll(...backends);
    }
  });
});
