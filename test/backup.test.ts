import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { httpHealthCheck, loadBalance, type LoadBalancer } from 'proxy-balancer';
import { closeAll, deadPort, listen, request, waitFor, type TestServer } from './helpers.js';

/** A backend answering with its name, whose `/health` answers 200 or 503 as the test says. */
interface Toggled extends TestServer {
  name: string;
  healthy: boolean;
  /** Requests other than health checks. */
  served: number;
}

async function toggled(name: string): Promise<Toggled> {
  const self = { healthy: true, served: 0 };
  const server = await listen((req, res) => {
    if (req.url === '/health') {
      res.statusCode = self.healthy ? 200 : 503;
      res.end();
      return;
    }
    self.served++;
    if (req.url === '/hold') setTimeout(() => res.end(name), 300);
    else res.end(name);
  });
  return Object.assign(self, server, { name });
}

const check = () => httpHealthCheck({ path: '/health', interval: 10, timeout: 500, jitter: 0, healthyThreshold: 1, unhealthyThreshold: 1 });

async function spread(url: string, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { status, body } = await request(url);
    const key = status === 200 ? body : String(status);
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

const ready = (lb: LoadBalancer): string[] => lb.pool.ready.map((t) => t.key).sort();

describe('backup targets', () => {
  test('a backup takes traffic only while no primary is up, and stops taking new requests once one is back', async () => {
    const [p1, p2, b] = await Promise.all(['p1', 'p2', 'b'].map(toggled));
    const lb = loadBalance({ targets: [p1!.url, p2!.url, { url: b!.url, backup: true }], healthCheck: check() });
    const front = await listen(lb);
    try {
      await lb.firstHealthCheck();
      assert.deepEqual(await spread(front.url, 6), { p1: 3, p2: 3 }, 'the backup idles while primaries are up');
      assert.equal(b!.served, 0);
      p1!.healthy = false;
      await waitFor(() => lb.pool.ready.length === 1);
      assert.deepEqual(await spread(front.url, 4), { p2: 4 }, 'one primary up is enough');
      p2!.healthy = false;
      await waitFor(() => lb.stats().onBackups);
      assert.deepEqual(ready(lb), [b!.url]);
      assert.deepEqual(await spread(front.url, 4), { b: 4 }, 'no primary up: the backup serves');
      const stats = lb.stats();
      assert.equal(stats.panic, false);
      assert.deepEqual(
        stats.targets.map((t) => [t.backup, t.state]),
        [
          [false, 'down'],
          [false, 'down'],
          [true, 'up'],
        ],
      );
      const observe = await listen((req, res) => (req.url!.startsWith('/metrics') ? metrics(req, res) : status(req, res)));
      const metrics = lb.metrics();
      const status = lb.statusPage();
      try {
        const text = (await request(`${observe.url}/metrics`)).body;
        assert.match(text, /^proxy_balancer_backups_active 1$/m);
        assert.match(text, new RegExp(`^proxy_balancer_target_backup\\{target="${b!.url}"\\} 1$`, 'm'));
        assert.match(text, new RegExp(`^proxy_balancer_target_backup\\{target="${p1!.url}"\\} 0$`, 'm'));
        const page = JSON.parse((await request(`${observe.url}/?format=json`)).body);
        assert.equal(page.onBackups, true);
        assert.deepEqual(
          page.targets.map((t: { backup: boolean }) => t.backup),
          [false, false, true],
        );
      } finally {
        await observe.close();
      }
      // A slow request on the backup, then a primary comes back.
      const held = request(`${front.url}/hold`);
      await waitFor(() => b!.served === 5);
      p1!.healthy = true;
      await waitFor(() => !lb.stats().onBackups);
      assert.deepEqual(await spread(front.url, 4), { p1: 4 }, 'new requests go to the primary again');
      const finished = await held;
      assert.deepEqual([finished.status, finished.body], [200, 'b'], 'the request already on the backup finishes there');
      assert.equal(b!.served, 5);
    } finally {
      await lb.close();
      await closeAll(front, p1, p2, b);
    }
  });

  test('health checks run on backups too: a failed backup takes no traffic, so with nothing up the answer is 503', async () => {
    const [p, b1, b2] = await Promise.all(['p', 'b1', 'b2'].map(toggled));
    const lb = loadBalance({
      targets: [p!.url, { url: b1!.url, backup: true }, { url: b2!.url, backup: true }],
      healthCheck: check(),
    });
    const front = await listen(lb);
    try {
      await lb.firstHealthCheck();
      p!.healthy = false;
      b1!.healthy = false;
      await waitFor(() => lb.stats().targets.filter((t) => t.state === 'down').length === 2);
      assert.deepEqual(await spread(front.url, 4), { b2: 4 }, 'only the healthy backup');
      b2!.healthy = false;
      await waitFor(() => lb.pool.ready.length === 0);
      assert.deepEqual(await spread(front.url, 2), { 503: 2 });
      b1!.healthy = true;
      await waitFor(() => lb.pool.ready.length === 1);
      assert.deepEqual(await spread(front.url, 2), { b1: 2 }, 'a backup passing its checks again serves');
      assert.ok(
        lb.stats().targets.every((t) => t.lastCheck !== undefined),
        'every target, backups included, was checked',
      );
    } finally {
      await lb.close();
      await closeAll(front, p, b1, b2);
    }
  });

  test('panic mode comes after backups: primaries short of the threshold are joined by backups, then panic takes every target', async () => {
    const [p1, p2, p3, p4, b1, b2] = await Promise.all(['p1', 'p2', 'p3', 'p4', 'b1', 'b2'].map(toggled));
    const primaries = [p1!, p2!, p3!, p4!];
    const lb = loadBalance({
      targets: [...primaries.map((p) => p.url), { url: b1!.url, backup: true }, { url: b2!.url, backup: true }],
      healthCheck: check(),
      panicThreshold: 50,
    });
    const front = await listen(lb);
    const settle = (n: number) => waitFor(() => lb.stats().targets.filter((t) => t.state === 'up').length === n);
    try {
      await lb.firstHealthCheck();
      p1!.healthy = false;
      p2!.healthy = false;
      await settle(4);
      assert.deepEqual(ready(lb), [p3!.url, p4!.url].sort(), '2 of 4 primaries is 50%: enough');
      assert.equal(lb.stats().onBackups, false);
      p3!.healthy = false;
      await settle(3);
      assert.deepEqual(ready(lb), [p4!.url, b1!.url, b2!.url].sort(), '1 of 4 is short: the backups join the primary still up');
      assert.deepEqual(await spread(front.url, 3), { p4: 1, b1: 1, b2: 1 });
      assert.deepEqual([lb.stats().onBackups, lb.stats().panic], [true, false]);
      p4!.healthy = false;
      b1!.healthy = false;
      await settle(1);
      assert.deepEqual(ready(lb), [b2!.url], 'no primary up, 1 of 2 backups is 50%: the backup serves, no panic');
      b2!.healthy = false;
      await settle(0);
      assert.equal(lb.stats().panic, true, 'nothing left: panic');
      assert.equal(lb.pool.ready.length, 6, 'panic takes every target that is not draining, primaries and backups');
      assert.deepEqual(await spread(front.url, 6), { p1: 1, p2: 1, p3: 1, p4: 1, b1: 1, b2: 1 }, 'round robin over all six');
      p1!.healthy = true;
      await settle(1);
      assert.deepEqual([lb.stats().panic, lb.stats().onBackups], [true, false], '1 of 4 primaries, 0 of 2 backups: still panic');
      b1!.healthy = true;
      await settle(2);
      assert.deepEqual(ready(lb), [p1!.url, b1!.url].sort(), 'a backup tier at 50% ends panic');
      assert.equal(lb.stats().panic, false);
    } finally {
      await lb.close();
      await closeAll(front, ...primaries, b1, b2);
    }
  });

  test('backups added at run time, and sticky clients moved off a backup once a primary is back', async () => {
    const [p, b] = await Promise.all(['p', 'b'].map(toggled));
    const lb = loadBalance({ targets: [p!.url], healthCheck: check(), affinity: { cookie: 'lb', secret: 'a secret of 16 bytes or more' } });
    const front = await listen(lb);
    try {
      const added = lb.pool.add({ url: b!.url, backup: true });
      assert.equal(added.backup, true);
      await lb.firstHealthCheck();
      p!.healthy = false;
      await waitFor(() => lb.stats().onBackups);
      const first = await request(front.url);
      assert.equal(first.body, 'b');
      const cookie = first.headers['set-cookie']![0]!.split(';')[0]!;
      for (let i = 0; i < 3; i++) assert.equal((await request(front.url, { headers: { cookie } })).body, 'b', 'sticky on the backup');
      p!.healthy = true;
      await waitFor(() => !lb.stats().onBackups);
      const moved = await request(front.url, { headers: { cookie } });
      assert.equal(moved.body, 'p', 'the backup left the snapshot, so its clients are placed on the primary');
      assert.match(moved.headers['set-cookie']?.[0] ?? '', /^lb=/);
      // Declared again without the flag, the target becomes a primary.
      lb.pool.add(b!.url);
      assert.deepEqual(ready(lb), [p!.url, b!.url].sort());
    } finally {
      await lb.close();
      await closeAll(front, p, b);
    }
  });

  test('passive ejection applies to backups too: a backup failing requests is ejected, the other serves', async () => {
    const [primary, deadBackup] = await Promise.all([deadPort(), deadPort()]);
    const live = await toggled('live');
    const lb = loadBalance({
      targets: [`http://127.0.0.1:${primary}`, { url: `http://127.0.0.1:${deadBackup}`, backup: true }, { url: live.url, backup: true }],
      // Backups count as members for the ejection cap: 2 of 3 out is over the default 50%.
      outlierDetection: { maxEjectionPercent: 100 },
    });
    const front = await listen(lb);
    try {
      // No active checks: the primary is taken out by passive detection only (3 failures). Until
      // then each request fails on it and is retried on a backup (the dead one, then the live one).
      assert.deepEqual(await spread(front.url, 3), { live: 3 });
      assert.equal(lb.stats().targets[0]!.state, 'ejected');
      assert.equal(lb.stats().onBackups, true);
      // Requests on the dead backup are retried on the live one until it is ejected in turn.
      assert.deepEqual(await spread(front.url, 8), { live: 8 });
      assert.deepEqual(
        lb.stats().targets.map((t) => t.state),
        ['ejected', 'ejected', 'up'],
      );
    } finally {
      await lb.close();
      await closeAll(front, live);
    }
  });

  test('a request that failed on every primary is retried on a backup (NGINX proxy_next_upstream), before any ejection', async () => {
    const [p1, p2] = await Promise.all([deadPort(), deadPort()]);
    const live = await toggled('backup');
    const lb = loadBalance({ targets: [`http://127.0.0.1:${p1}`, `http://127.0.0.1:${p2}`, { url: live.url, backup: true }], outlierDetection: false });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'backup');
      assert.equal(lb.stats().onBackups, false, 'the primaries are still in the snapshot: only the retry went to the backup');
      assert.equal(lb.stats().retries, 2);
    } finally {
      await lb.close();
      await closeAll(front, live);
    }
  });

  test('backup must be a boolean', () => {
    assert.throws(() => loadBalance({ targets: [{ url: 'http://127.0.0.1:1', backup: 'yes' as never }] }), {
      name: 'TypeError',
      message: 'targets[0]: backup must be a boolean, got "yes"',
    });
    const lb = loadBalance({ targets: ['http://127.0.0.1:1'] });
    assert.throws(() => lb.pool.add({ url: 'http://127.0.0.1:2', backup: 1 as never }), /pool\.add\(target\): backup must be a boolean, got 1/);
    void lb.close();
  });
});
