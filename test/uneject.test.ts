import assert from 'node:assert/strict';
import http, { type RequestListener } from 'node:http';
import { describe, test } from 'node:test';
import { httpHealthCheck, loadBalance } from 'proxy-balancer';
import { backend, closeAll, delay, listen, request, waitFor, type TestServer } from './helpers.js';

const INTERVAL = 200;
const EJECTION = 1500;

/** Listens on `port` (0: ephemeral), counting only proxied requests, not health checks. */
async function counted(port: number, served: { n: number }): Promise<TestServer> {
  const handler: RequestListener = (req, res) => {
    if (req.url !== '/health') served.n++;
    res.end(req.url === '/health' ? 'ok' : 'b');
  };
  const server = http.createServer();
  const original = server.listen.bind(server);
  (server as unknown as { listen: (...args: unknown[]) => unknown }).listen = (_port: unknown, ...rest: unknown[]) => original(port, ...(rest as []));
  return listen(handler, server);
}

/**
 * Kills backend b, sends requests until passive detection ejects it, revives it on the same port at
 * once (or after `deadFor` ms), and measures how long until b serves a proxied request again.
 */
async function killEjectRevive(unejectOnHealthCheck: boolean | undefined, deadFor = 0): Promise<{ ejectedFor: number; backAfter: number; events: string[] }> {
  const a = await backend('a');
  const served = { n: 0 };
  let b = await counted(0, served);
  const bPort = b.port;
  const lb = loadBalance({
    targets: [a.url, b.url],
    healthCheck: httpHealthCheck({ path: '/health', interval: INTERVAL, timeout: 100, jitter: 0 }),
    outlierDetection: { consecutiveFailures: 3, baseEjectionTime: EJECTION, ...(unejectOnHealthCheck === undefined ? {} : { unejectOnHealthCheck }) },
  });
  const front = await listen(lb);
  const events: string[] = [];
  let ejectedAt = 0;
  lb.on('ejected', (t) => {
    events.push(`ejected ${t.key === b.url ? 'b' : 'a'}`);
    ejectedAt = Date.now();
  });
  lb.on('targetUp', (t, from) => events.push(`up ${t.key === b.url ? 'b' : 'a'} from ${from}`));
  lb.on('targetDown', (t, info) => events.push(`down (${info.state}) ${t.key === b.url ? 'b' : 'a'}`));
  try {
    await b.close();
    // Retries carry these to a: no client sees the failures that eject b.
    for (let i = 0; i < 20 && ejectedAt === 0; i++) assert.equal((await request(`${front.url}/`)).status, 200);
    assert.notEqual(ejectedAt, 0, 'b ejected by its failures');
    await delay(deadFor);
    b = await counted(bPort, served);
    const revivedAt = Date.now();
    const before = served.n;
    while (served.n === before && Date.now() - revivedAt < EJECTION + 2000) {
      assert.equal((await request(`${front.url}/`)).status, 200);
      await delay(10);
    }
    assert.ok(served.n > before, 'b serves again');
    const back = Date.now();
    return { ejectedFor: back - ejectedAt, backAfter: back - revivedAt, events };
  } finally {
    await lb.close();
    await closeAll(front, a, b);
  }
}

describe('a passing active check ends an ejection (unejectOnHealthCheck)', () => {
  test('by default, a revived backend serves again within two check intervals, long before its ejection ends', async () => {
    const { backAfter, ejectedFor, events } = await killEjectRevive(undefined);
    console.log(
      `# uneject on: traffic back ${backAfter} ms after the revival (check interval ${INTERVAL} ms, ejection ${EJECTION} ms); events: ${events.join(', ')}`,
    );
    assert.ok(backAfter <= 2 * INTERVAL + 100, `back after ${backAfter} ms`);
    assert.ok(ejectedFor < EJECTION, `out for ${ejectedFor} ms`);
    assert.ok(events.includes('up b from ejected'), events.join(', '));
  });

  test('a backend dead long enough to fail its checks too is back after healthyThreshold passes, not its ejection time', async () => {
    const { backAfter, events } = await killEjectRevive(undefined, 4 * INTERVAL);
    console.log(`# uneject on, down too: traffic back ${backAfter} ms after the revival; events: ${events.join(', ')}`);
    assert.ok(backAfter <= 2 * INTERVAL + 100, `back after ${backAfter} ms`);
    assert.ok(events.includes('up b from ejected') || events.includes('up b from down'), events.join(', '));
  });

  test('unejectOnHealthCheck: false keeps the target out for its whole ejection time', async () => {
    const { backAfter, ejectedFor, events } = await killEjectRevive(false);
    console.log(`# uneject off: traffic back ${backAfter} ms after the revival, ${ejectedFor} ms after the ejection (ejection ${EJECTION} ms)`);
    assert.ok(ejectedFor >= EJECTION, `out for ${ejectedFor} ms, less than the ${EJECTION} ms ejection`);
    assert.ok(events.includes('up b from ejected'), events.join(', '));
  });

  test('a check that started before the ejection does not end it', async () => {
    // The probe is slow: it starts while b still answers, b is ejected meanwhile, then the probe passes.
    const probe: { release: (() => void) | undefined } = { release: undefined };
    const b = await listen((req, res) => {
      if (req.url === '/health') probe.release = () => res.end('ok');
      else {
        res.statusCode = 500;
        res.end();
      }
    });
    const a = await backend('a');
    const lb = loadBalance({
      targets: [a.url, b.url],
      healthCheck: httpHealthCheck({ path: '/health', interval: 50, timeout: 5000, jitter: 0 }),
      outlierDetection: { consecutiveFailures: 1, count5xx: true, baseEjectionTime: 60_000 },
      retry: false,
    });
    const front = await listen(lb);
    try {
      await waitFor(() => probe.release !== undefined);
      assert.ok(probe.release, 'the probe of b is in flight');
      for (let i = 0; i < 4 && lb.pool.get(b.url)?.state !== 'ejected'; i++) await request(`${front.url}/`);
      assert.equal(lb.pool.get(b.url)?.state, 'ejected');
      probe.release();
      probe.release = undefined;
      await waitFor(() => lb.stats().targets[1]?.lastCheck?.ok === true);
      assert.equal(lb.stats().targets[1]?.lastCheck?.ok, true, 'the old probe passed');
      assert.equal(lb.pool.get(b.url)?.state, 'ejected', 'and b stays ejected');
      // The next probe, started after the ejection, ends it.
      await waitFor(() => probe.release !== undefined);
      (probe.release as (() => void) | undefined)?.();
      await waitFor(() => lb.pool.get(b.url)?.state === 'up');
      assert.equal(lb.pool.get(b.url)?.state, 'up');
    } finally {
      probe.release?.();
      await lb.close();
      await closeAll(front, a, b);
    }
  });

  test('the option is validated', () => {
    assert.throws(() => loadBalance({ targets: ['http://127.0.0.1:1'], outlierDetection: { unejectOnHealthCheck: 'yes' as unknown as boolean } }), {
      name: 'TypeError',
      message: 'loadBalance: options.outlierDetection.unejectOnHealthCheck must be a boolean, got "yes"',
    });
  });
});
