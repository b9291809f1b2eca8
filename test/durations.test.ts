import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  dnsTargets,
  httpHealthCheck,
  loadBalance,
  type LoadBalanceOptions,
  memoryStore,
  peakEwma,
  Pool,
  redisRateLimitStore,
  redisStore,
  responseCache,
  serverTimeouts,
  StoreGuard,
  tcpHealthCheck,
  tieredStore,
} from 'proxy-balancer';
import { OutlierDetector, resolveOutlierOptions } from '../lib/health/outlier.js';
import { HoldOff } from '../lib/proxy/retry/retry-after.js';
import { clampDelay, MAX_TIMER_MS, MAX_TIMER_SECONDS } from '../lib/timer.js';
import { closeAll, delay, listen, request, type TestServer } from './helpers.js';

const TARGET = 'http://127.0.0.1:1';
const DAY = 86_400_000;
/** Browsers cap a cookie's Max-Age at 400 days (RFC 6265bis); affinity.ttl feeds no timer, so that is its bound. */
const COOKIE_BOUND = 400 * DAY;

/** Node emits a TimeoutOverflowWarning (and fires after 1 ms) for a timer past 2^31−1 ms: collected here for the whole file. */
const overflows: Error[] = [];
const onWarning = (warning: Error): void => {
  if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning);
};
before(() => process.on('warning', onWarning));
after(() => process.off('warning', onWarning));

async function lb(
  options: Omit<LoadBalanceOptions, 'targets'> & { targets?: LoadBalanceOptions['targets'] },
  use?: (balancer: ReturnType<typeof loadBalance>) => void,
): Promise<void> {
  const balancer = loadBalance({ targets: [TARGET], ...options } as LoadBalanceOptions);
  try {
    use?.(balancer);
  } finally {
    await balancer.close();
  }
}

async function closing(make: () => { close(): unknown }): Promise<void> {
  await make().close();
}

const fakeRedis = {
  getBuffer: () => Promise.resolve(null),
  scan: () => Promise.resolve(['0', []]),
  evalsha: () => Promise.resolve(),
  eval: () => Promise.resolve(),
};

const fakePubSub = {
  publish: () => Promise.resolve(1),
  duplicate: () => ({ subscribe: () => Promise.resolve(1), on: () => undefined, quit: () => Promise.resolve('OK'), disconnect: () => undefined }),
};

const probe = { check: async () => true };

interface DurationCase {
  /** The option as the TypeError names it. */
  option: string;
  /** Builds whatever reads the option, with it set to `value`; closes what it made. */
  run(value: number): Promise<void>;
  /** The largest value allowed; default MAX_TIMER_MS. */
  bound?: number;
  unit?: 'milliseconds' | 'seconds';
}

const LB = 'loadBalance: options';

/** Every duration option, at every depth, of every factory. */
const CASES: DurationCase[] = [
  { option: `${LB}.proxyTimeout`, run: (v) => lb({ proxyTimeout: v }) },
  { option: `${LB}.timeout`, run: (v) => lb({ timeout: v }) },
  { option: `${LB}.slowStart`, run: (v) => lb({ slowStart: v }) },
  { option: `${LB}.retryAfter`, run: (v) => lb({ retryAfter: v }), bound: MAX_TIMER_SECONDS, unit: 'seconds' },
  { option: `${LB}.queueTimeout`, run: (v) => lb({ maxConnections: 1, queueTimeout: v }) },
  { option: `${LB}.webSocketIdleTimeout`, run: (v) => lb({ webSocketIdleTimeout: v }) },
  { option: `${LB}.agentOptions.timeout`, run: (v) => lb({ agentOptions: { timeout: v } }) },
  { option: `${LB}.retry.perTryTimeout`, run: (v) => lb({ retry: { perTryTimeout: v } }) },
  { option: `${LB}.retry.maxRetryAfter`, run: (v) => lb({ retry: { onStatus: [503], maxRetryAfter: v } }) },
  { option: `${LB}.retry.tryDuration`, run: (v) => lb({ retry: { tryDuration: v } }) },
  { option: `${LB}.retry.interval`, run: (v) => lb({ retry: { interval: v } }) },
  { option: `${LB}.retry.backoff.base`, run: (v) => lb({ retry: { backoff: { base: v } } }) },
  { option: `${LB}.retry.backoff.max`, run: (v) => lb({ retry: { backoff: { max: v } } }) },
  { option: `${LB}.outlierDetection.baseEjectionTime`, run: (v) => lb({ outlierDetection: { baseEjectionTime: v } }) },
  { option: `${LB}.outlierDetection.maxEjectionTime`, run: (v) => lb({ outlierDetection: { maxEjectionTime: v } }) },
  { option: `${LB}.outlierDetection.interval`, run: (v) => lb({ outlierDetection: { failurePercentage: true, interval: v } }) },
  { option: `${LB}.rateLimit.windowMs`, run: (v) => lb({ rateLimit: { limit: 1, windowMs: v } }) },
  { option: `${LB}.affinity.ttl`, run: (v) => lb({ affinity: { secret: 'sixteen bytes at least', ttl: v } }), bound: COOKIE_BOUND },
  { option: `${LB}.healthCheck.interval`, run: (v) => lb({ healthCheck: { ...probe, interval: v } }) },
  { option: `${LB}.healthCheck.timeout`, run: (v) => lb({ healthCheck: { ...probe, timeout: v } }) },
  { option: `healthCheck of ${TARGET}.interval`, run: (v) => lb({ targets: [{ url: TARGET, healthCheck: { ...probe, interval: v } }] }) },
  { option: `healthCheck of ${TARGET}.timeout`, run: (v) => lb({ targets: [{ url: TARGET, healthCheck: { ...probe, timeout: v } }] }) },
  { option: 'httpHealthCheck: options.interval', run: (v) => lb({ healthCheck: httpHealthCheck({ interval: v }) }) },
  { option: 'httpHealthCheck: options.timeout', run: (v) => lb({ healthCheck: httpHealthCheck({ timeout: v }) }) },
  { option: 'tcpHealthCheck: options.interval', run: (v) => lb({ healthCheck: tcpHealthCheck({ interval: v }) }) },
  { option: 'tcpHealthCheck: options.timeout', run: (v) => lb({ healthCheck: tcpHealthCheck({ timeout: v }) }) },
  { option: 'peakEwma: options.decay', run: (v) => lb({ strategy: peakEwma({ decay: v }) }) },
  { option: 'peakEwma: options.defaultLatency', run: (v) => lb({ strategy: peakEwma({ defaultLatency: v }) }) },
  { option: 'dnsTargets: options.interval', run: async (v) => void dnsTargets('http://api.internal', { interval: v }) },
  { option: 'dnsTargets: options.minInterval', run: async (v) => void dnsTargets('http://api.internal', { interval: MAX_TIMER_MS, minInterval: v }) },
  { option: 'dnsTargets: options.timeout', run: async (v) => void dnsTargets('http://api.internal', { timeout: v }) },
  { option: 'responseCache: options.coalesceTimeout', run: (v) => lb({ cache: responseCache({ coalesceTimeout: v }) }) },
  { option: 'responseCache: options.keepStale', run: (v) => lb({ cache: responseCache({ keepStale: v }) }) },
  { option: 'tieredStore: options.l1MaxTtl', run: (v) => closing(() => tieredStore({ l2: memoryStore(), redis: fakePubSub, l1MaxTtl: v })) },
  { option: 's: options.timeout', run: async (v) => void new StoreGuard('s', { timeout: v }) },
  { option: 's: options.coolDown', run: async (v) => void new StoreGuard('s', { coolDown: v }) },
  { option: 'redisStore: options.timeout', run: async (v) => void redisStore(fakeRedis as never, { timeout: v }) },
  { option: 'redisStore: options.coolDown', run: async (v) => void redisStore(fakeRedis as never, { coolDown: v }) },
  { option: 'redisRateLimitStore: options.timeout', run: async (v) => void redisRateLimitStore(fakeRedis as never, { timeout: v }) },
  { option: 'redisRateLimitStore: options.coolDown', run: async (v) => void redisRateLimitStore(fakeRedis as never, { coolDown: v }) },
  { option: 'serverTimeouts: options.headersTimeout', run: async (v) => void serverTimeouts(http.createServer(), { headersTimeout: v, requestTimeout: 0 }) },
  { option: 'serverTimeouts: options.requestTimeout', run: async (v) => void serverTimeouts(http.createServer(), { requestTimeout: v }) },
  { option: 'serverTimeouts: options.keepAliveTimeout', run: async (v) => void serverTimeouts(http.createServer(), { keepAliveTimeout: v }) },
  { option: 'serverTimeouts: options.checkInterval', run: async (v) => void serverTimeouts(http.createServer(), { checkInterval: v }) },
  { option: 'lb.statusPage: options.refreshMs', run: (v) => lb({}, (balancer) => void balancer.statusPage({ refreshMs: v })) },
];

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('every duration option is bounded by what a timer holds', () => {
  for (const { option, run, bound = MAX_TIMER_MS, unit = 'milliseconds' } of CASES) {
    test(`${option}: ${bound + 1} throws a TypeError naming it; ${bound} is accepted`, async () => {
      const expected = new RegExp(`^${literal(option)} must be at most ${bound} ${unit} \\(about [\\d.]+ days\\), got ${bound + 1}$`);
      await assert.rejects(
        async () => run(bound + 1),
        (err: Error) => {
          assert.ok(err instanceof TypeError, `a TypeError, not ${err.name}`);
          assert.match(err.message, expected);
          return true;
        },
      );
      await run(bound);
    });
  }

  test('the message says the bound in days', async () => {
    await assert.rejects(
      lb({ retry: { maxRetryAfter: 3_000_000_000 } }),
      new TypeError('loadBalance: options.retry.maxRetryAfter must be at most 2147483647 milliseconds (about 24.8 days), got 3000000000'),
    );
    await assert.rejects(
      lb({ retryAfter: 2_147_484 }),
      new TypeError('loadBalance: options.retryAfter must be at most 2147483 seconds (about 24.8 days), got 2147484'),
    );
  });

  test('none of the values at the bound armed a timer that overflowed', async () => {
    await delay(10);
    assert.deepEqual(overflows, []);
  });
});

describe('clampDelay', () => {
  test('keeps a delay within [0, 2^31−1]: a huge one waits as long as a timer can, never 1 ms', () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
    assert.equal(clampDelay(250), 250);
    assert.equal(clampDelay(MAX_TIMER_MS), MAX_TIMER_MS);
    assert.equal(clampDelay(MAX_TIMER_MS + 1), MAX_TIMER_MS);
    assert.equal(clampDelay(99_999_999_999_000), MAX_TIMER_MS);
    assert.equal(clampDelay(Number.POSITIVE_INFINITY), MAX_TIMER_MS);
    assert.equal(clampDelay(-5), 0);
    assert.equal(clampDelay(Number.NaN), 0);
  });
});

/** A backend answering 503 with `retryAfter` to its first request, 200 after. */
async function busyOnce(retryAfter: string): Promise<TestServer> {
  let busy = true;
  return listen((_req, res) => {
    if (busy) {
      busy = false;
      res.writeHead(503, { 'retry-after': retryAfter });
      res.end('busy');
      return;
    }
    res.end('a');
  });
}

describe('a Retry-After far beyond what a timer holds', () => {
  for (const [kind, value] of [
    ['delta-seconds', '99999999999'],
    ['an HTTP-date in the year 9999', 'Fri, 31 Dec 9999 23:59:59 GMT'],
  ] as const) {
    test(`${kind}: the target is held off for maxRetryAfter (2^31−1 ms), without a TimeoutOverflowWarning, not released after 1 ms`, async () => {
      const warnings: Error[] = [];
      const onAnyWarning = (warning: Error): void => void warnings.push(warning);
      process.on('warning', onAnyWarning);
      const a = await busyOnce(value);
      const b = await listen((_req, res) => res.end('b'));
      const balancer = loadBalance({ targets: [a.url, b.url], outlierDetection: false, retry: { onStatus: [503], maxRetryAfter: MAX_TIMER_MS } });
      const front = await listen(balancer);
      try {
        const started = Date.now();
        assert.equal((await request(`${front.url}/`)).body, 'b', 'the 503 was retried on b');
        const until = balancer.stats().targets[0]!.heldOffUntil;
        assert.ok(until >= started + MAX_TIMER_MS && until <= Date.now() + MAX_TIMER_MS, `held off until +${until - started} ms`);
        // An overflowing timer would have released it after 1 ms.
        await delay(100);
        assert.equal(balancer.stats().ready, 1);
        assert.equal(balancer.stats().targets[0]!.heldOffUntil, until);
        for (let i = 0; i < 4; i++) assert.equal((await request(`${front.url}/`)).body, 'b');
        assert.equal(a.hits, 1, 'the held target got nothing more');
        assert.deepEqual(
          warnings.map((w) => `${w.name}: ${w.message}`),
          [],
        );
      } finally {
        process.off('warning', onAnyWarning);
        await balancer.close();
        await closeAll(front, a, b);
      }
    });
  }

  test('the hold-off timer itself is clamped: a cap beyond the bound (which validation refuses) still never overflows', async () => {
    const pool = new Pool(['http://a.test', 'http://b.test']);
    const [a] = pool.targets;
    const holdOff = new HoldOff(pool, Number.POSITIVE_INFINITY);
    try {
      const before = Date.now();
      holdOff.heard(a!, '99999999999');
      const until = holdOff.until(a!);
      assert.ok(until >= before + MAX_TIMER_MS && until <= Date.now() + MAX_TIMER_MS, `held off until +${until - before} ms`);
      await delay(20);
      assert.equal(holdOff.until(a!), until, 'still held');
      assert.deepEqual(
        pool.ready.map((t) => t.key),
        ['http://b.test'],
      );
      assert.deepEqual(overflows, []);
    } finally {
      holdOff.close();
    }
  });
});

describe('outlier ejection time growing with the ejection count', () => {
  for (const [label, maxEjectionTime] of [
    ['capped by maxEjectionTime at the bound', MAX_TIMER_MS],
    ['with no cap at all (validation refuses one; the timer is clamped anyway)', Number.POSITIVE_INFINITY],
  ] as const) {
    test(`base × n past 2^31−1 ms, ${label}: the target stays out, no TimeoutOverflowWarning`, async () => {
      const pool = new Pool(['http://a.test', 'http://b.test']);
      const [a] = pool.targets;
      const options = { ...resolveOutlierOptions({ consecutiveFailures: 1, baseEjectionTime: 2 ** 30 })!, maxEjectionTime };
      const durations: number[] = [];
      const detector = new OutlierDetector(options, pool, { ejected: (_t, ms) => void durations.push(ms), confirm: () => true }, 1000);
      try {
        // An active check that passes ends the ejection at once, so the next failure is ejection n + 1.
        for (let n = 1; n <= 40; n++) {
          detector.failure(a!, 'reset', Number.NaN);
          assert.equal(a!.state, 'ejected', `ejection #${n}`);
          if (n < 40) detector.checkPassed(a!, Date.now());
        }
        assert.equal(durations[0], 2 ** 30);
        assert.deepEqual(new Set(durations.slice(1)), new Set([MAX_TIMER_MS]), 'from the second on: as long as a timer holds');
        const status = detector.status(a!)!;
        assert.equal(status.ejections, 40);
        assert.ok(status.ejectedUntil - Date.now() > MAX_TIMER_MS - 1000);
        await delay(50);
        assert.equal(a!.state, 'ejected', 'an overflowing timer would have re-admitted it after 1 ms');
        assert.deepEqual(overflows, []);
      } finally {
        detector.close();
      }
    });
  }
});
