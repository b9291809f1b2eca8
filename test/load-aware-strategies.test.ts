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
    assert.ok(strategy.targetStats!(target)!.latency! > 79.9, 'the peak at once');
    strategy.onEnd!(target, answered(2));
    // A faster answer weighs at least 1/20 (decaySamples): 80 × 0.95 + 2 × 0.05.
    assert.ok(Math.abs(strategy.targetStats!(target)!.latency! - 76.1) < 0.1);
    const timeOnly = peakEwma({ decaySamples: 0 });
    for (let i = 0; i < 1000; i++) timeOnly.onEnd!(target, answered(2));
    timeOnly.onEnd!(target, answered(80));
    timeOnly.onEnd!(target, answered(2));
    assert.ok(timeOnly.targetStats!(target)!.latency! > 79, 'decaySamples: 0 is time alone, as Finagle');
  });

  test('a busy target sheds a peak within decaySamples answers; probes refresh a starved one', () => {
    const strategy = peakEwma({ decaySamples: 10, probe: 0.1 });
    const [a, b, c] = makeTargets([1, 1, 1]);
    strategy.onEnd!(c, answered(50));
    strategy.onEnd!(a, answered(50));
    for (let i = 0; i < 30; i++) strategy.onEnd!(a, answered(1));
    // 50 × 0.9^30 + 1 × (1 - 0.9^30) ≈ 3.0: time alone (10 s decay) would still be at 50.
    assert.ok(strategy.targetStats!(a)!.latency! < 3.1, `${strategy.targetStats!(a)!.latency}`);
    strategy.onEnd!(b, answered(1));
    // c answered 50 ms, a and b about 1 ms: P2C never picks c, but every 10th pick probes the stalest estimate.
    const ready = Object.freeze([a, b, c]);
    const picked = (): Target => strategy.pick(ready, {} as http.IncomingMessage)!;
    const since = performance.now();
    while (performance.now() - since < 120); // older than decay / 100 = 100 ms
    for (let i = 0; i < 9; i++) {
      const t = picked();
      assert.notEqual(t, c);
      strategy.onEnd!(t, answered(1));
    }
    assert.equal(picked(), c, 'the 10th pick probes c, stalest');
    assert.equal(strategy.targetStats!(c)!.probes, 1);
    assert.equal(strategy.targetStats!(a)!.probes, 0);
    c.inFlight = 1;
    strategy.onEnd!(c, answered(2));
    c.inFlight = 0;
    // A probe's faster answer moves the estimate halfway at once: 50 → 26.
    assert.ok(Math.abs(strategy.targetStats!(c)!.latency! - 26) < 0.5, `${strategy.targetStats!(c)!.latency}`);
    const off = peakEwma({ probe: 0 });
    off.onEnd!(c, answered(50));
    off.onEnd!(a, answered(1));
    off.onEnd!(b, answered(1));
    while (performance.now() - since < 240);
    for (let i = 0; i < 100; i++) assert.notEqual(off.pick(ready, {} as http.IncomingMessage), c);
    assert.equal(off.targetStats!(c)!.probes, undefined, 'no probing, no probe count');
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
      message: /peakEwma: unknown option "decayTime" \(expected one of decay, defaultLatency, decaySamples, probe\)/,
    });
    for (const probe of [-0.1, 0.2, Number.NaN, '0.01']) {
      assert.throws(() => peakEwma({ probe } as never), {
        name: 'TypeError',
        message: /^peakEwma: options\.probe must be a number at least 0 and at most 0\.1/,
      });
    }
    for (const decaySamples of [-1, 2.5, '20']) {
      assert.throws(() => peakEwma({ decaySamples } as never), {
        name: 'TypeError',
        message: /^peakEwma: options\.decaySamples must be a non-negative integer of answers/,
      });
    }
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

describe('peakEwma recovery', () => {
  /**
   * Three backends under a closed loop of 10 concurrent clients; the third answers 50 ms late for
   * `slowFor` ms, then at once again. Returns its share while slow (after the first second) and how
   * long after it recovered its share over a 250 ms window first reached 25%.
   */
  async function recovery(strategy: Strategy, slowFor: number, watchFor: number): Promise<{ slowShare: number; recoveredAfter: number; probes: unknown }> {
    const state = { slow: true };
    const reply = (res: http.ServerResponse, name: string): void => {
      res.setHeader('x-backend', name);
      res.end('ok');
    };
    const backends = await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        listen((_req, res) => {
          if (name === 'c' && state.slow) setTimeout(reply, 50, res, name);
          else reply(res, name);
        }),
      ),
    );
    const lb = loadBalance({ targets: backends.map((b) => b.url), strategy });
    const front = await listen(lb);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    const answers: Array<{ at: number; name: string }> = [];
    const start = performance.now();
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const name = await new Promise<string>((resolve, reject) => {
          http
            .get(front.url, { agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(String(res.headers['x-backend'])));
            })
            .on('error', reject);
        });
        answers.push({ at: performance.now() - start, name });
      }
    };
    const workers = Array.from({ length: 10 }, worker);
    try {
      await delay(slowFor);
      state.slow = false;
      const recoveredAt = performance.now() - start;
      await delay(watchFor);
      stop = true;
      await Promise.all(workers);
      const whileSlow = answers.filter((a) => a.at > 1000 && a.at < recoveredAt);
      const slowShare = whileSlow.filter((a) => a.name === 'c').length / whileSlow.length;
      let recoveredAfter = Number.POSITIVE_INFINITY;
      for (let from = recoveredAt; from + 250 <= recoveredAt + watchFor; from += 50) {
        const window = answers.filter((a) => a.at >= from && a.at < from + 250);
        if (window.length > 0 && window.filter((a) => a.name === 'c').length / window.length >= 0.25) {
          recoveredAfter = from + 250 - recoveredAt;
          break;
        }
      }
      return { slowShare, recoveredAfter, probes: lb.stats().targets[2].balancing?.probes };
    } finally {
      stop = true;
      agent.destroy();
      await lb.close();
      await closeAll(front, ...backends);
    }
  }

  test('a backend fast again gets a quarter of the traffic within seconds; while slow, under 10%', async () => {
    const result = await recovery(peakEwma(), 4000, 5000);
    console.log(
      `peakEwma(): slow share ${result.slowShare.toFixed(3)}, ≥25% again ${result.recoveredAfter.toFixed(0)} ms after recovering, ${result.probes} probes`,
    );
    assert.ok(result.slowShare <= 0.1, `share while slow ${result.slowShare}`);
    assert.ok(result.recoveredAfter < 4000, `took ${result.recoveredAfter} ms`);
  });

  /**
   * The same scene without sockets, so the machine's own jitter plays no part: 400 picks a second
   * (8 every 20 ms), answers after their latency (1 ms; 50 ms for c while slow), in flight
   * meanwhile. Returns c's share while slow (after the first second) and how long after it
   * recovered its share over a 250 ms window first reached 25%.
   */
  async function simulated(strategy: Strategy, slowFor: number, watchFor: number): Promise<{ slowShare: number; recoveredAfter: number }> {
    const targets = makeTargets([1, 1, 1]);
    const [, , c] = targets;
    const ready = Object.freeze([...targets]);
    const pending: Array<{ target: Target; due: number; latency: number }> = [];
    const picks: Array<{ at: number; slow: boolean }> = [];
    const start = performance.now();
    let recoveredAt = Number.POSITIVE_INFINITY;
    while (performance.now() - start < slowFor + watchFor) {
      const now = performance.now();
      if (now - start >= slowFor && recoveredAt === Number.POSITIVE_INFINITY) recoveredAt = now - start;
      for (let i = pending.length - 1; i >= 0; i--) {
        const p = pending[i];
        if (p.due > now) continue;
        pending.splice(i, 1);
        p.target.inFlight--;
        strategy.onEnd!(p.target, answered(p.latency));
      }
      for (let i = 0; i < 8; i++) {
        const target = strategy.pick(ready, {} as http.IncomingMessage)!;
        target.inFlight++;
        const latency = target === c && now - start < slowFor ? 50 : 1;
        pending.push({ target, due: now + latency, latency });
        picks.push({ at: now - start, slow: target === c });
      }
      await delay(20);
    }
    const whileSlow = picks.filter((p) => p.at > 1000 && p.at < recoveredAt);
    const slowShare = whileSlow.filter((p) => p.slow).length / whileSlow.length;
    let recoveredAfter = Number.POSITIVE_INFINITY;
    for (let from = recoveredAt; from + 250 <= recoveredAt + watchFor; from += 50) {
      const window = picks.filter((p) => p.at >= from && p.at < from + 250);
      if (window.length > 0 && window.filter((p) => p.slow).length / window.length >= 0.25) {
        recoveredAfter = from + 250 - recoveredAt;
        break;
      }
    }
    return { slowShare, recoveredAfter };
  }

  test("without the machine's jitter: the anchors starve a recovered backend for seconds, probing does not", async () => {
    const [anchors, ours] = await Promise.all([simulated(peakEwma({ decaySamples: 0, probe: 0 }), 3000, 5000), simulated(peakEwma(), 3000, 5000)]);
    console.log(
      `simulated: anchors (decaySamples 0, probe 0) slow share ${anchors.slowShare.toFixed(3)}, ≥25% again after ${anchors.recoveredAfter} ms; ` +
        `peakEwma() slow share ${ours.slowShare.toFixed(3)}, ≥25% again after ${ours.recoveredAfter.toFixed(0)} ms`,
    );
    assert.equal(anchors.recoveredAfter, Number.POSITIVE_INFINITY, 'the fade alone takes longer than 5 s');
    assert.ok(ours.slowShare <= 0.1, `share while slow ${ours.slowShare}`);
    assert.ok(ours.recoveredAfter < 3000, `took ${ours.recoveredAfter} ms`);
  });
});
