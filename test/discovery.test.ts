import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  dnsTargets,
  loadBalance,
  weightedRoundRobin,
  type Discovery,
  type DiscoveryListener,
  type LoadBalancer,
  type StatusSnapshot,
  type TargetSpec,
} from 'proxy-balancer';
import { startDnsmasq } from './dnsmasq.js';
import { closeAll, delay, listen, request, waitFor } from './helpers.js';
import { type Browser, launchBrowser } from './browser.js';
import { skipUnless } from './services.js';

interface Backend {
  host: string;
  port: number;
  url: string;
  /** Proxied requests served. */
  hits: number;
  /** Requests held under /hold now. */
  readonly holding: number;
  /** Answers the requests held under /hold. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A backend on `host:port` (127.0.0.x: every one of them is loopback on Linux) answering with its
 * name, with the Host it saw under /echo, and under /hold only once released.
 */
async function serve(name: string, host: string, port = 0): Promise<Backend> {
  const sockets = new Set<Socket>();
  const held: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    backend.hits++;
    if (req.url === '/echo') return res.end(JSON.stringify({ name, host: req.headers.host }));
    if (req.url === '/hold') return void held.push(() => res.end(name));
    res.end(name);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  const backend: Backend = {
    host,
    port: bound,
    url: `http://${host}:${bound}`,
    hits: 0,
    get holding() {
      return held.length;
    },
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return backend;
}

/** Two backends on 127.0.0.1 and 127.0.0.2 with the same port, as two pods behind one name. */
async function pair(): Promise<[Backend, Backend]> {
  for (let attempt = 0; ; attempt++) {
    const a = await serve('a', '127.0.0.1');
    try {
      return [a, await serve('b', '127.0.0.2', a.port)];
    } catch (err) {
      await a.close();
      if (attempt > 5) throw err;
    }
  }
}

/** Sends `n` GETs through the front and counts the answers by body. */
async function spread(front: string, n: number, path = '/'): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const reply = await request(`${front}${path}`);
    assert.equal(reply.status, 200, reply.body);
    seen[reply.body] = (seen[reply.body] ?? 0) + 1;
  }
  return seen;
}

/** A self-signed certificate for `name`, made with the openssl CLI. */
function certificateFor(name: string): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pb-cert-'));
  try {
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`];
    execFileSync('openssl', [...args, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const keys = (lb: LoadBalancer): string[] => lb.pool.targets.map((t) => `${t.key} ${t.state}`).sort();

/** Polls through the front until `check` holds on an answer; returns how long that took. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) assert.fail(`${what} within ${ms} ms`);
    await delay(10);
  }
  return Date.now() - start;
}

describe('dnsTargets() against a real DNS server (dnsmasq)', { skip: skipUnless('dnsmasq') }, () => {
  test('A records: one target per address, added and drained as records change, re-resolved when the TTL runs out', async () => {
    const [a, b] = await pair();
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1'] } }, 1);
    // interval is long: only the 1 s TTL can make the balancer notice changes quickly.
    const lb = loadBalance({ targets: dnsTargets(`http://api.internal:${a.port}`, { servers: [dns.server], interval: 60_000, minInterval: 100 }) });
    const front = await listen(lb);
    try {
      await lb.firstDiscovery();
      assert.deepEqual(keys(lb), [`${a.url} up`]);
      assert.deepEqual(await spread(front.url, 4), { a: 4 });

      await dns.setHosts({ 'api.internal': ['127.0.0.1', '127.0.0.2'] });
      const changed = Date.now();
      await until('b takes traffic', async () => (await request(`${front.url}/`)).body === 'b');
      const addedAfter = Date.now() - changed;
      assert.deepEqual(keys(lb), [`${a.url} up`, `${b.url} up`]);
      assert.deepEqual(await spread(front.url, 4), { a: 2, b: 2 });

      // a leaves the record set while a request is on it: it drains, and that request completes.
      const held = [request(`${front.url}/hold`), request(`${front.url}/hold`)];
      await waitFor(() => a.holding === 1 && b.holding === 1);
      await dns.setHosts({ 'api.internal': ['127.0.0.2'] });
      const removed = Date.now();
      await until('a leaves rotation', () => lb.pool.get(a.url)?.state !== 'up');
      const drainedAfter = Date.now() - removed;
      assert.equal(lb.pool.get(a.url)?.state, 'draining', 'a drains while its request is in flight');
      assert.deepEqual(await spread(front.url, 4), { b: 4 });
      a.release();
      b.release();
      assert.deepEqual((await Promise.all(held)).map((r) => r.body).sort(), ['a', 'b'], 'the request on the drained target completed');
      await until('a is removed once drained', () => lb.pool.get(a.url) === undefined);

      const stats = lb.stats().discovery!;
      assert.equal(stats.length, 1);
      assert.equal(stats[0]!.name, `http://api.internal:${a.port}`);
      assert.equal(stats[0]!.targets, 1);
      assert.equal(stats[0]!.added, 2);
      assert.equal(stats[0]!.drained, 1);
      assert.equal(stats[0]!.errors, 0);
      assert.ok(stats[0]!.updates >= 3, `${stats[0]!.updates} updates`);
      console.log(`# DNS change -> traffic change (TTL 1 s, interval 60 s): record added ${addedAfter} ms, record removed ${drainedAfter} ms`);
      assert.ok(addedAfter < 2500 && drainedAfter < 2500, `${addedAfter} / ${drainedAfter} ms`);
    } finally {
      a.release();
      b.release();
      await lb.close();
      await closeAll(front, a, b);
      await dns.stop();
    }
  });

  test('records with TTL 0 are resolved again every minInterval', async () => {
    const [a, b] = await pair();
    // TTL 0: re-resolved every minInterval.
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1'] } }, 0);
    const lb = loadBalance({ targets: dnsTargets(`http://api.internal:${a.port}`, { servers: [dns.server], interval: 10_000, minInterval: 300 }) });
    try {
      await lb.firstDiscovery();
      const before = lb.stats().discovery![0]!.updates;
      await delay(1000);
      const rounds = lb.stats().discovery![0]!.updates - before;
      // 1000 ms at one round per 300 ms: 3 (timers and queries take a little time each).
      assert.ok(rounds >= 2 && rounds <= 4, `${rounds} rounds in 1 s with minInterval 300 ms`);
    } finally {
      await lb.close();
      await closeAll(a, b);
      await dns.stop();
    }
  });

  test('the DNS server failing keeps the last good set, counts each failed round, and shows on metrics and the status page', async () => {
    const [a, b] = await pair();
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1', '127.0.0.2'] } }, 1);
    const lb = loadBalance({
      targets: dnsTargets(`http://api.internal:${a.port}`, { servers: [dns.server], interval: 400, minInterval: 100, timeout: 100, tries: 1 }),
    });
    const front = await listen(lb);
    const metrics = await listen(lb.metrics());
    const page = await listen(lb.statusPage());
    try {
      await lb.firstDiscovery();
      assert.equal(lb.pool.targets.length, 2);
      await dns.pause();
      await until('a failed round', () => lb.stats().discovery![0]!.errors >= 2, 5000);
      const source = lb.stats().discovery![0]!;
      assert.equal(source.failing, true);
      assert.equal(source.targets, 2, 'the last good set stays');
      assert.match(source.lastError!.message, /address lookup of api\.internal failed: (ETIMEOUT|ECONNREFUSED)/);
      assert.deepEqual(keys(lb), [`${a.url} up`, `${b.url} up`]);
      assert.deepEqual(await spread(front.url, 4), { a: 2, b: 2 }, 'traffic goes on to the last good set');

      const text = (await request(`${metrics.url}/`)).body;
      const name = `http://api.internal:${a.port}`;
      assert.match(text, new RegExp(`proxy_balancer_discovery_errors_total\\{discovery="${name.replace(/[.]/g, '\\.')}"\\} [2-9]`));
      assert.match(text, new RegExp(`proxy_balancer_discovery_failing\\{discovery="${name.replace(/[.]/g, '\\.')}"\\} 1`));
      assert.match(text, new RegExp(`proxy_balancer_discovery_targets\\{discovery="${name.replace(/[.]/g, '\\.')}"\\} 2`));
      const snapshot = JSON.parse((await request(`${page.url}/?format=json`)).body) as StatusSnapshot;
      assert.equal(snapshot.discovery?.[0]?.failing, true);
      assert.equal(snapshot.targets[0]?.host, `api.internal:${a.port}`);

      await dns.resume();
      await until('discovery recovers', () => lb.stats().discovery![0]!.failing === false, 5000);
      assert.match((await request(`${metrics.url}/`)).body, /proxy_balancer_discovery_failing\{discovery="[^"]+"\} 0/);
    } finally {
      await lb.close();
      await closeAll(front, metrics, page, a, b);
      await dns.stop();
    }
  });

  test('a name that stops resolving (NXDOMAIN) keeps its last set too', async () => {
    const [a, b] = await pair();
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1'] } }, 0);
    const lb = loadBalance({ targets: dnsTargets(`http://api.internal:${a.port}`, { servers: [dns.server], interval: 200, minInterval: 50 }) });
    try {
      await lb.firstDiscovery();
      await dns.setHosts({ 'other.internal': ['127.0.0.2'] });
      await until('a failed round', () => lb.stats().discovery![0]!.failing);
      assert.match(lb.stats().discovery![0]!.lastError!.message, /ENOTFOUND|ENODATA/);
      assert.deepEqual(keys(lb), [`${a.url} up`]);
    } finally {
      await lb.close();
      await closeAll(a, b);
      await dns.stop();
    }
  });

  test('SRV records: each target name resolved, with the record port and weight; only the lowest priority', async () => {
    const one = await serve('one', '127.0.0.1');
    const two = await serve('two', '127.0.0.2');
    const spare = await serve('spare', '127.0.0.1');
    const dns = await startDnsmasq({
      hosts: { 'one.internal': ['127.0.0.1'], 'two.internal': ['127.0.0.2'], 'spare.internal': ['127.0.0.1'] },
      srv: [
        { name: '_api._tcp.internal', target: 'one.internal', port: one.port, priority: 10, weight: 10 },
        { name: '_api._tcp.internal', target: 'two.internal', port: two.port, priority: 10, weight: 30 },
        { name: '_api._tcp.internal', target: 'spare.internal', port: spare.port, priority: 20, weight: 100 },
      ],
    });
    const lb = loadBalance({
      targets: dnsTargets('srv+http://_api._tcp.internal', { servers: [dns.server], interval: 300, minInterval: 100 }),
      strategy: weightedRoundRobin(),
      changeOrigin: true,
    });
    const front = await listen(lb);
    try {
      await lb.firstDiscovery();
      assert.deepEqual(
        lb.pool.targets.map((t) => [t.key, t.configuredWeight, t.host]).sort(),
        [
          [one.url, 10, `one.internal:${one.port}`],
          [two.url, 30, `two.internal:${two.port}`],
        ],
        'the priority-20 record is left out',
      );
      assert.deepEqual(await spread(front.url, 40), { one: 10, two: 30 });
      // changeOrigin sends the SRV target's name, not the address it resolved to.
      const echoed = JSON.parse((await request(`${front.url}/echo`)).body) as { name: string; host: string };
      assert.equal(echoed.host, `${echoed.name}.internal:${echoed.name === 'one' ? one.port : two.port}`);

      // The priority-10 records go: the priority-20 one takes over. dnsmasq restarts for SRV changes.
      await dns.setSrv([{ name: '_api._tcp.internal', target: 'spare.internal', port: spare.port, priority: 20, weight: 100 }]);
      const changed = Date.now();
      await until('spare serves', async () => (await request(`${front.url}/`)).body === 'spare');
      console.log(`# SRV change -> traffic change (interval 300 ms, dnsmasq restarted): ${Date.now() - changed} ms`);
      await until('the old targets are drained', () => lb.pool.targets.length === 1);
      assert.deepEqual(
        lb.pool.targets.map((t) => [t.key, t.configuredWeight]),
        [[spare.url, 100]],
      );
    } finally {
      await lb.close();
      await closeAll(front, one, two, spare);
      await dns.stop();
    }
  });

  test('SRV weight changes are applied in place; weight 0 records get a very small share next to weighted ones', async () => {
    const one = await serve('one', '127.0.0.1');
    const two = await serve('two', '127.0.0.2');
    const dns = await startDnsmasq({
      hosts: { 'one.internal': ['127.0.0.1'], 'two.internal': ['127.0.0.2'] },
      srv: [
        { name: '_api._tcp.internal', target: 'one.internal', port: one.port, weight: 0 },
        { name: '_api._tcp.internal', target: 'two.internal', port: two.port, weight: 0 },
      ],
    });
    const lb = loadBalance({ targets: dnsTargets('srv+http://_api._tcp.internal', { servers: [dns.server], interval: 200, minInterval: 100 }) });
    try {
      await lb.firstDiscovery();
      const before = lb.pool.get(one.url);
      assert.deepEqual(
        lb.pool.targets.map((t) => t.configuredWeight),
        [1, 1],
        'all weights 0: equal shares',
      );
      await dns.setSrv([
        { name: '_api._tcp.internal', target: 'one.internal', port: one.port, weight: 5 },
        { name: '_api._tcp.internal', target: 'two.internal', port: two.port, weight: 0 },
      ]);
      await until('the weights change', () => lb.pool.get(one.url)?.configuredWeight === 5);
      assert.equal(lb.pool.get(one.url), before, 'the same target, reweighed');
      assert.equal(lb.pool.get(two.url)?.configuredWeight, 0.01);
    } finally {
      await lb.close();
      await closeAll(one, two);
      await dns.stop();
    }
  });

  test('changeOrigin sends the DNS name as Host; without it the client Host goes through', async () => {
    const [a, b] = await pair();
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1'] } });
    const sources = () => dnsTargets(`http://api.internal:${a.port}`, { servers: [dns.server] });
    const plain = loadBalance({ targets: sources() });
    const origin = loadBalance({ targets: sources(), changeOrigin: true });
    const front1 = await listen(plain);
    const front2 = await listen(origin);
    try {
      await plain.firstDiscovery();
      await origin.firstDiscovery();
      assert.equal(JSON.parse((await request(`${front1.url}/echo`, { headers: { host: 'public.example' } })).body).host, 'public.example');
      assert.equal(JSON.parse((await request(`${front2.url}/echo`, { headers: { host: 'public.example' } })).body).host, `api.internal:${a.port}`);
    } finally {
      await plain.close();
      await origin.close();
      await closeAll(front1, front2, a, b);
      await dns.stop();
    }
  });

  test('https: TLS server name and certificate check use the DNS name, with or without changeOrigin', async () => {
    const { key, cert } = certificateFor('secure.internal');
    const seen: string[] = [];
    const upstream = https.createServer({ key, cert }, (req, res) => {
      seen.push(`${(req.socket as import('node:tls').TLSSocket).servername} ${req.headers.host}`);
      res.end('secure');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    const dns = await startDnsmasq({ hosts: { 'secure.internal': ['127.0.0.1'] } });
    const balancers = [false, true].map((changeOrigin) =>
      loadBalance({ targets: dnsTargets(`https://secure.internal:${port}`, { servers: [dns.server] }), changeOrigin, agentOptions: { ca: cert } }),
    );
    const fronts = await Promise.all(balancers.map((lb) => listen(lb)));
    try {
      for (const lb of balancers) await lb.firstDiscovery();
      for (const front of fronts) {
        const reply = await request(`${front.url}/`, { headers: { host: 'public.example' } });
        assert.equal(reply.status, 200, 'the certificate for secure.internal was accepted');
      }
      assert.deepEqual(seen, ['secure.internal public.example', `secure.internal secure.internal:${port}`]);
    } finally {
      for (const lb of balancers) await lb.close();
      await closeAll(...fronts);
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
      await dns.stop();
    }
  });

  test('family 6: AAAA records become bracketed IPv6 targets', async (t) => {
    let v6: Backend;
    try {
      v6 = await serve('v6', '::1');
    } catch {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1', '::1'] } });
    const lb = loadBalance({ targets: dnsTargets(`http://api.internal:${v6.port}`, { servers: [dns.server], family: 6 }) });
    const front = await listen(lb);
    try {
      await lb.firstDiscovery();
      assert.deepEqual(keys(lb), [`http://[::1]:${v6.port} up`]);
      assert.equal((await request(`${front.url}/`)).body, 'v6');
    } finally {
      await lb.close();
      await closeAll(front, v6);
      await dns.stop();
    }
  });

  test('lb.close() stops re-resolving: no query reaches the server afterwards', async () => {
    const [a, b] = await pair();
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1'] } }, 0);
    const lb = loadBalance({ targets: dnsTargets(`http://api.internal:${a.port}`, { servers: [dns.server], interval: 100, minInterval: 50 }) });
    try {
      await lb.firstDiscovery();
      await lb.close();
      const updates = lb.stats().discovery![0]!.updates;
      await delay(300);
      assert.equal(lb.stats().discovery![0]!.updates, updates);
    } finally {
      await closeAll(a, b);
      await dns.stop();
    }
  });
});

/** A Discovery fed by hand: what a Consul or Kubernetes watcher would look like. */
class ManualDiscovery implements Discovery {
  readonly name = 'manual';
  listener: DiscoveryListener | undefined;
  stopped = false;
  start(listener: DiscoveryListener): void {
    this.listener = listener;
  }
  stop(): void {
    this.stopped = true;
  }
  set(targets: TargetSpec[]): void {
    this.listener!.update(targets);
  }
}

describe('a custom Discovery', () => {
  test('sits next to static targets, manages only what it added, refuses an invalid set whole', async () => {
    const a = await serve('a', '127.0.0.1');
    const b = await serve('b', '127.0.0.1');
    const c = await serve('c', '127.0.0.1');
    const source = new ManualDiscovery();
    const lb = loadBalance({ targets: [a.url, source] });
    const front = await listen(lb);
    try {
      assert.deepEqual(lb.stats().discovery![0], {
        name: 'manual',
        targets: 0,
        updates: 0,
        errors: 0,
        added: 0,
        drained: 0,
        lastUpdate: 0,
        lastError: undefined,
        failing: false,
      });
      const first = lb.firstDiscovery();
      source.set([b.url, { url: c.url, weight: 2 }, a.url]);
      await first;
      assert.deepEqual(keys(lb), [`${a.url} up`, `${b.url} up`, `${c.url} up`].sort());
      assert.deepEqual(await spread(front.url, 3), { a: 1, b: 1, c: 1 });
      // a is static: dropping it from the set leaves it alone.
      source.set([c.url]);
      await until('b is drained', () => lb.pool.get(b.url) === undefined);
      assert.deepEqual(keys(lb), [`${a.url} up`, `${c.url} up`].sort());
      assert.equal(lb.pool.get(c.url)?.configuredWeight, 1, 'the new weight applies');

      source.set([c.url, 'ftp://nope']);
      const stats = lb.stats().discovery![0]!;
      assert.equal(stats.errors, 1);
      assert.match(stats.lastError!.message, /manual: targets\[1\]: URL must use http: or https:/);
      assert.deepEqual(keys(lb), [`${a.url} up`, `${c.url} up`].sort(), 'the last good set stays');
      source.listener!.error(new Error('consul unreachable'));
      assert.equal(lb.stats().discovery![0]!.lastError!.message, 'consul unreachable');

      // A target taken back while it drains stays.
      source.set([c.url, b.url]);
      const held = [request(`${front.url}/hold`), request(`${front.url}/hold`), request(`${front.url}/hold`)];
      await waitFor(() => a.holding + b.holding + c.holding === 3);
      assert.equal(b.holding, 1);
      source.set([c.url]);
      assert.equal(lb.pool.get(b.url)?.state, 'draining');
      source.set([c.url, b.url]);
      assert.equal(lb.pool.get(b.url)?.state, 'up');
      for (const backend of [a, b, c]) backend.release();
      await Promise.all(held);
      assert.equal(lb.pool.get(b.url)?.state, 'up', 'still up once its request ended');
    } finally {
      for (const backend of [a, b, c]) backend.release();
      await lb.close();
      await closeAll(front, a, b, c);
    }
    assert.equal(source.stopped, true, 'lb.close() stopped the source');
    source.set([]);
    assert.equal(lb.stats().discovery![0]!.targets, 2, 'reports after stop() are ignored');
  });

  test('validation: dnsTargets options and loadBalance targets', () => {
    const bad: Array<[() => unknown, RegExp]> = [
      [() => dnsTargets('api.internal'), /^dnsTargets: url must be a URL like/],
      [() => dnsTargets('ftp://api.internal'), /^dnsTargets: url must use http:, https:, srv\+http: or srv\+https:, got ftp:/],
      [() => dnsTargets('http://10.0.0.1:80'), /^dnsTargets: url must name a host to resolve/],
      [() => dnsTargets('srv+http://_api._tcp.internal:80'), /must not carry one/],
      [() => dnsTargets('http://api.internal?x=1'), /must not carry a query/],
      [() => dnsTargets('http://api.internal', { interval: -1 }), /^dnsTargets: options\.interval must be a positive number of milliseconds, got -1$/],
      [
        () => dnsTargets('http://api.internal', { interval: 1000, minInterval: 2000 }),
        /^dnsTargets: options\.minInterval must be at most options\.interval \(1000\), got 2000$/,
      ],
      [() => dnsTargets('http://api.internal', { family: 5 as 4 }), /^dnsTargets: options\.family must be 0, 4 or 6, got 5$/],
      [() => dnsTargets('http://api.internal', { servers: ['not an address'] }), /^dnsTargets: options\.servers must be an array of IP addresses/],
      [() => dnsTargets('http://api.internal', { servers: [] }), /^dnsTargets: options\.servers must be a non-empty array of addresses, got an array$/],
      [() => dnsTargets('http://api.internal', { tries: 0 }), /^dnsTargets: options\.tries must be a positive integer, got 0$/],
      [() => dnsTargets('http://api.internal', { weight: 0 }), /^dnsTargets: options\.weight must be a positive finite number, got 0$/],
      [
        () => dnsTargets('http://api.internal', { ttl: true } as object),
        /^dnsTargets: unknown option "ttl" \(expected one of interval, minInterval, family, servers, timeout, tries, weight, name\)$/,
      ],
      [
        () => loadBalance({ targets: 'http://a' as unknown as [] }),
        /^loadBalance: options\.targets must be an array of URLs, \{ url, weight \} objects and discoveries, or a discovery/,
      ],
      [() => loadBalance({ targets: [{ url: 'http://10.0.0.1', hostname: 'bad name' }] }), /targets\[0\]: hostname must be a DNS name, got "bad name"/],
    ];
    for (const [make, message] of bad) assert.throws(make, { name: 'TypeError', message });
    const source = dnsTargets('http://api.internal', { servers: ['127.0.0.1:1'] });
    const lb = loadBalance({ targets: source });
    assert.throws(() => loadBalance({ targets: source }), /already started; give each balancer its own dnsTargets\(\)/);
    void lb.close();
  });
});

describe('the status page shows discovery', { skip: skipUnless('dnsmasq', 'chromium') }, () => {
  test('sources with their sets, discovered targets with their DNS name, and a failing source in the banner', async () => {
    const [a, b] = await pair();
    const dns = await startDnsmasq({ hosts: { 'api.internal': ['127.0.0.1', '127.0.0.2'] } }, 1);
    const name = `http://api.internal:${a.port}`;
    const lb = loadBalance({ targets: dnsTargets(name, { servers: [dns.server], interval: 300, minInterval: 100, timeout: 100, tries: 1 }) });
    const page = await listen(lb.statusPage({ refreshMs: 250 }));
    let browser: Browser | undefined;
    try {
      await lb.firstDiscovery();
      browser = await launchBrowser();
      const tab = browser.page;
      await tab.goto(`${page.url}/`, { waitUntil: 'load' });
      const source = tab.locator(`#discovery tr[data-discovery="${name}"]`);
      await source.waitFor({ timeout: 5000 });
      assert.match(await source.innerText(), /^\S+\s+2\s+\d+\s+\d+ s ago\s+2\s+0\s+0\s+ok$/);
      assert.match(await tab.locator(`#targets tr[data-target="${a.url}"]`).innerText(), new RegExp(`api\\.internal:${a.port}`));
      assert.equal(await tab.locator('#banner').innerText(), 'All 2 targets up');

      await dns.pause();
      await tab.locator(`#discovery tr.not-up[data-discovery="${name}"]`).waitFor({ timeout: 5000 });
      assert.match(await source.innerText(), /failing: address lookup of api\.internal failed: \w+\s*keeping the last 2 targets/);
      assert.match(await tab.locator('#banner').innerText(), /^Discovery failing, last good targets kept: /);
      assert.deepEqual(browser.errors, [], 'no script error in the browser');
    } finally {
      await browser?.close();
      await lb.close();
      await closeAll(page, a, b);
      await dns.stop();
    }
  });
});
