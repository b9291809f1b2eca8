import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { analyse, type Candidate, emptyFigures, type IntervalFigures } from '../lib/health/outlier-analysis.js';
import { resolveOutlierOptions } from '../lib/health/outlier.js';
import { loadBalance, type BalancerStats, type EjectionReason, type LoadBalancer } from 'proxy-balancer';
import { closeAll, listen, type TestServer } from './helpers.js';

/** A backend named by its URL in `x-backend`; `fail(n)` says whether its n-th request (from 0) answers 500; `delayMs` holds every answer. */
async function backendWith(fail: (n: number) => boolean, delayMs = 0): Promise<TestServer> {
  let n = 0;
  const server: TestServer = await listen((req, res) => {
    req.resume();
    const status = fail(n++) ? 500 : 200;
    const answer = (): void => {
      res.statusCode = status;
      res.setHeader('x-backend', server.url);
      res.end(String(status));
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  return server;
}

const alternating = (n: number): boolean => n % 2 === 0;
const never = (): boolean => false;

/** Sends requests, `concurrency` at a time, until `done()` or `ms` passed; counts answers per backend. */
async function drive(url: string, concurrency: number, ms: number, done: () => boolean = () => false): Promise<Map<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const counts = new Map<string, number>();
  const end = Date.now() + ms;
  const worker = async (): Promise<void> => {
    while (Date.now() < end && !done()) {
      const name = await new Promise<string>((resolve, reject) => {
        http
          .get(url, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.headers['x-backend'])));
          })
          .on('error', reject);
      });
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return counts;
}

interface Ejection {
  url: string;
  reason: EjectionReason;
  afterMs: number;
}

/** Runs `lb` behind a front under load for up to `ms`, or until the first ejection when `untilEjected`. */
async function run(
  lb: LoadBalancer,
  concurrency: number,
  ms: number,
  untilEjected: boolean,
): Promise<{ ejections: Ejection[]; counts: Map<string, number>; stats: BalancerStats }> {
  const front = await listen(lb);
  const began = Date.now();
  const ejections: Ejection[] = [];
  lb.on('ejected', (target, info) => ejections.push({ url: target.key, reason: info.reason, afterMs: Date.now() - began }));
  try {
    const counts = await drive(front.url, concurrency, ms, () => untilEjected && ejections.length > 0);
    // Before close(), which forgets what detection knew.
    return { ejections, counts, stats: lb.stats() };
  } finally {
    await lb.close();
    await front.close();
  }
}

describe('outlier detection over intervals', () => {
  test('success rate: a backend failing every other request is ejected, where consecutive failures alone never eject it', async () => {
    const bad = await backendWith(alternating);
    const good = await Promise.all([backendWith(never), backendWith(never)]);
    const targets = [good[0].url, bad.url, good[1].url];
    try {
      // One request at a time, so the bad backend strictly alternates and never fails twice in a row.
      const control = await run(
        loadBalance({
          targets,
          retry: false,
          // Envoy's default factor 1.9 cannot single out one target among three: it is at most √2 stdevs below the mean.
          outlierDetection: { count5xx: true, interval: 200, successRate: { minimumHosts: 3, requestVolume: 10 } },
        }),
        1,
        900,
        false,
      );
      assert.deepEqual(control.ejections, [], 'consecutive failures (3 in a row) and success rate at factor 1.9 eject nothing');
      const total = [...control.counts.values()].reduce((a, b) => a + b, 0);
      assert.ok(Math.abs((control.counts.get(bad.url) ?? 0) - total / 3) <= 1, 'the bad backend kept its share');
      for (const t of control.stats.targets) {
        // Judged, not merely unseen: every target had the volume in the last interval.
        assert.ok(t.lastInterval!.requests >= 10, `${t.url}: ${JSON.stringify(t.lastInterval)}`);
        assert.equal(t.state, 'up');
      }

      const lb = loadBalance({
        targets,
        retry: false,
        outlierDetection: { count5xx: true, interval: 200, baseEjectionTime: 60_000, successRate: { minimumHosts: 3, requestVolume: 10, stdevFactor: 1 } },
      });
      const { ejections, stats: all } = await run(lb, 1, 3000, true);
      console.log(`success rate: ejected after ${ejections[0]?.afterMs} ms`);
      assert.equal(ejections.length, 1);
      assert.deepEqual({ url: ejections[0].url, reason: ejections[0].reason }, { url: bad.url, reason: 'successRate' });
      const stats = all.targets.find((t) => t.url === bad.url)!;
      assert.equal(stats.state, 'ejected');
      assert.equal(stats.ejectionReason, 'successRate');
      assert.deepEqual(stats.ejectionsByReason, { consecutive: 0, successRate: 1, failurePercentage: 0, latency: 0 });
      assert.ok(stats.consecutiveFailures! <= 1, 'never two failures in a row');
      const last = stats.lastInterval!;
      assert.ok(last.requests >= 10 && Math.abs(last.failures / last.requests - 0.5) < 0.1, JSON.stringify(last));
    } finally {
      await closeAll(bad, ...good);
    }
  });

  test('failure percentage: backends failing half their requests are ejected, no more than maxEjectionPercent allows', async () => {
    const bad = await Promise.all([backendWith(alternating), backendWith(alternating)]);
    const good = await backendWith(never);
    try {
      const lb = loadBalance({
        targets: [bad[0].url, good.url, bad[1].url],
        retry: false,
        outlierDetection: { count5xx: true, interval: 200, baseEjectionTime: 60_000, failurePercentage: { threshold: 40, minimumHosts: 2, requestVolume: 10 } },
      });
      const { ejections, counts, stats } = await run(lb, 1, 1200, false);
      console.log(`failure percentage: ejected after ${ejections[0]?.afterMs} ms`);
      assert.equal(ejections.length, 1, 'with 3 targets the default 50% allows one ejection');
      assert.equal(ejections[0].reason, 'failurePercentage');
      assert.ok(bad.some((b) => b.url === ejections[0].url));
      assert.ok((counts.get(good.url) ?? 0) > 0);
      assert.deepEqual(stats.targets.map((t) => t.state).sort(), ['ejected', 'up', 'up']);
    } finally {
      await closeAll(good, ...bad);
    }
  });

  test('latency: a backend 50 ms slower than the others is ejected', async () => {
    const slow = await backendWith(never, 50);
    const fast = await Promise.all([backendWith(never), backendWith(never)]);
    try {
      const lb = loadBalance({
        targets: [fast[0].url, slow.url, fast[1].url],
        outlierDetection: { interval: 250, baseEjectionTime: 60_000, latency: { requestVolume: 10 } },
      });
      const { ejections, stats: all } = await run(lb, 10, 4000, true);
      console.log(`latency: ejected after ${ejections[0]?.afterMs} ms`);
      assert.equal(ejections.length, 1);
      assert.deepEqual({ url: ejections[0].url, reason: ejections[0].reason }, { url: slow.url, reason: 'latency' });
      const stats = all.targets.find((t) => t.url === slow.url)!;
      assert.equal(stats.ejectionReason, 'latency');
      assert.ok(stats.lastInterval!.latency! >= 45, `mean latency shown: ${stats.lastInterval!.latency}`);
    } finally {
      await closeAll(slow, ...fast);
    }
  });

  test('the analysis: Envoy’s success-rate rule, failure percentage, latency by mean or peak, request volume and minimum hosts', () => {
    const figures = (requests: number, failures: number, latencies: number[] = []): IntervalFigures => ({
      ...emptyFigures(),
      requests,
      failures,
      timed: latencies.length,
      latencySum: latencies.reduce((a, b) => a + b, 0),
      latencyPeak: Math.max(0, ...latencies),
    });
    const hosts = (list: IntervalFigures[]): Candidate<string>[] => list.map((f, i) => ({ target: `t${i}`, figures: f }));
    const options = (input: object) => resolveOutlierOptions(input)!.intervals!;
    const five = hosts([figures(100, 0), figures(100, 1), figures(100, 0), figures(100, 2), figures(100, 30)]);
    // Rates 100, 99, 100, 98, 70: mean 93.4, stdev 11.8, floor 71.0 with Envoy's 1.9.
    assert.deepEqual(
      analyse(five, options({ successRate: true, interval: 1000 })).map((v) => [v.target, v.reason]),
      [['t4', 'successRate']],
    );
    assert.deepEqual(analyse(five.slice(0, 4), options({ successRate: true })), [], 'fewer than minimumHosts (5)');
    assert.deepEqual(analyse(hosts([figures(99, 0), ...five.slice(1).map((c) => c.figures)]), options({ successRate: true })), [], 'below requestVolume');
    assert.deepEqual(
      analyse(five, options({ failurePercentage: { threshold: 30, minimumHosts: 5, requestVolume: 100 } })).map((v) => v.target),
      ['t4'],
      'at or over the threshold',
    );
    const timed = hosts([figures(10, 0, [5, 5, 5]), figures(10, 0, [5, 6, 4]), figures(10, 0, [5, 5, 20])]);
    const latency = (measure: string) => options({ latency: { requestVolume: 3, measure } });
    assert.deepEqual(analyse(timed, latency('mean')), [], 'a mean of 10 ms is under 3 × the median 5 ms');
    assert.deepEqual(
      analyse(timed, latency('peak')).map((v) => [v.target, v.reason]),
      [['t2', 'latency']],
      'a peak of 20 ms is over 3 × the median peak 6 ms',
    );
    const both = analyse(
      hosts([figures(100, 0), figures(100, 0), figures(100, 0), figures(100, 0), figures(100, 90)]),
      options({ successRate: true, failurePercentage: true }),
    );
    assert.deepEqual(
      both.map((v) => v.reason),
      ['successRate'],
      'one verdict per target, success rate first',
    );
  });

  test('options are validated, naming the option', () => {
    const bad = (outlierDetection: object, message: RegExp) =>
      assert.throws(() => loadBalance({ targets: ['http://127.0.0.1:1'], outlierDetection }), { name: 'TypeError', message });
    bad({ successrate: true }, /unknown option "outlierDetection\.successrate" — did you mean "outlierDetection\.successRate"\?/);
    bad({ successRate: { stdevFactor: 0 } }, /outlierDetection\.successRate\.stdevFactor must be a number above 0/);
    bad({ successRate: { minimumHosts: 0 } }, /outlierDetection\.successRate\.minimumHosts must be a positive integer/);
    bad(
      { successRate: { requestVolum: 5 } },
      /unknown option "outlierDetection\.successRate\.requestVolum" — did you mean "outlierDetection\.successRate\.requestVolume"\?/,
    );
    bad({ successRate: 'on' }, /outlierDetection\.successRate must be an object, true or false/);
    bad({ failurePercentage: { threshold: 101 } }, /outlierDetection\.failurePercentage\.threshold must be a number at least 0 and at most 100/);
    bad({ failurePercentage: { threshold: Number.NaN } }, /failurePercentage\.threshold/);
    bad({ latency: { factor: 1 } }, /outlierDetection\.latency\.factor must be a number above 1/);
    bad({ latency: { minimumHosts: 1 } }, /outlierDetection\.latency\.minimumHosts must be an integer of at least 2/);
    bad({ latency: { measure: 'p99' } }, /outlierDetection\.latency\.measure must be 'mean' or 'peak', got "p99"/);
    bad({ latency: true, interval: -5 }, /outlierDetection\.interval must be a positive number of milliseconds/);
    assert.equal(resolveOutlierOptions({ interval: 5 })!.intervals, undefined, 'no interval timer without an interval detection');
  });
});
