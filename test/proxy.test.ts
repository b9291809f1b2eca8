import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { backend, closeAll, listen, rawRequest, request, waitFor, type TestServer } from './helpers.js';

describe('proxying through a pool of three backends', () => {
  let backends: TestServer[];
  let lb: LoadBalancer;
  let front: TestServer;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);

  before(async () => {
    process.on('warning', onWarning);
    backends = await Promise.all(['a', 'b', 'c'].map(backend));
    lb = loadBalance({ targets: backends.map((b) => b.url) });
    front = await listen(lb);
  });
  after(async () => {
    process.off('warning', onWarning);
    await lb.close();
    await closeAll(front, ...backends);
  });

  test('round robin spreads requests exactly evenly over a window', async () => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const { body } = await request(`${front.url}/`);
      seen[body] = (seen[body] ?? 0) + 1;
    }
    assert.deepEqual(seen, { a: 10, b: 10, c: 10 });
  });

  test('request and response bodies stream through intact', async () => {
    const body = 'x'.repeat(256 * 1024);
    const reply = await request(`${front.url}/echo/upload?q=1`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    const echoed = JSON.parse(reply.body);
    assert.equal(reply.status, 200);
    assert.equal(echoed.url, '/echo/upload?q=1');
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.body.length, body.length);
  });

  test('the path reaches the target as received: no slash collapsing, no scheme rewriting inside it', async () => {
    for (const path of ['/echo//a///b?x=//y', '/echo/redirect/http:/example.com/', '/echo/%2F%2Fenc']) {
      const reply = await request(`${front.url}${path}`);
      assert.equal(JSON.parse(reply.body).url, path);
    }
  });

  test('chunked uploads without Content-Length arrive whole', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${front.url}/echo`, { method: 'PUT', agent: false }, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve(data));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(`chunk${i};`);
      req.end();
    });
    const echoed = JSON.parse(reply);
    assert.equal(echoed.headers['transfer-encoding'], 'chunked');
    assert.equal(echoed.body, Array.from({ length: 10 }, (_, i) => `chunk${i};`).join(''));
  });

  test('X-Forwarded-* describe the client hop; untrusted client claims are overwritten', async () => {
    const reply = await request(`${front.url}/echo`, {
      headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', host: 'shop.example' },
    });
    const { headers } = JSON.parse(reply.body);
    assert.equal(headers['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'shop.example');
    assert.equal(headers['x-forwarded-port'], String(front.port));
    assert.equal(headers.host, 'shop.example', 'Host passes through unless changeOrigin');
    assert.equal(headers.forwarded, undefined, 'Forwarded is opt-in');
  });

  test('hop-by-hop request headers, and those named in Connection, are not forwarded', async () => {
    const reply = await request(`${front.url}/echo`, {
      headers: {
        connection: 'keep-alive, x-session-hop',
        'x-session-hop': 'secret',
        'keep-alive': 'timeout=5',
        te: 'gzip;q=0.5',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'proxy-connection': 'keep-alive',
        'x-end-to-end': 'kept',
      },
    });
    const { headers } = JSON.parse(reply.body);
    for (const name of ['x-session-hop', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection']) {
      assert.equal(headers[name], undefined, `${name} must not be forwarded`);
    }
    assert.equal(headers['x-end-to-end'], 'kept');
    assert.equal(headers.connection, 'keep-alive', 'the upstream connection is our own keep-alive one');
  });

  test('backend identity headers and hop-by-hop response headers are not relayed', async () => {
    const talkative = await listen((_req, res) => {
      res.setHeader('server', 'Apache/2.4.1 (internal-host-7)');
      res.setHeader('x-powered-by', 'PHP/5.2');
      res.setHeader('keep-alive', 'timeout=99');
      res.setHeader('connection', 'keep-alive, x-hop');
      res.setHeader('x-hop', 'y');
      res.end('ok');
    });
    const own = loadBalance({ targets: [talkative.url] });
    const ownFront = await listen(own);
    try {
      const reply = await request(`${ownFront.url}/`);
      assert.equal(reply.body, 'ok');
      assert.equal(reply.headers.server, undefined);
      assert.equal(reply.headers['x-powered-by'], undefined);
      assert.equal(reply.headers['keep-alive'], undefined);
      assert.equal(reply.headers['x-hop'], undefined);
      assert.equal(reply.headers.connection, 'close', 'the client asked for close (agent: false) and gets it');
    } finally {
      await own.close();
      await closeAll(ownFront, talkative);
    }
  });

  test('an absolute-form request target cannot choose another upstream', async () => {
    const raw = await rawRequest(front.port, 'GET http://evil.example:9999/echo?x=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 200/);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
    assert.equal(body.url, '/echo?x=1');
  });

  test('upstream connections are kept alive and reused', async () => {
    const solo = await backend('solo');
    const own = loadBalance({ targets: [solo.url] });
    const ownFront = await listen(own);
    let maxSockets = 0;
    try {
      for (let i = 0; i < 20; i++) {
        await request(`${ownFront.url}/`);
        maxSockets = Math.max(maxSockets, solo.sockets.size);
      }
      assert.equal(solo.hits, 20);
      assert.equal(maxSockets, 1, 'sequential requests share one upstream connection');
      await own.close();
      await waitFor(() => solo.sockets.size === 0);
      assert.equal(solo.sockets.size, 0, 'close() closes upstream connections');
    } finally {
      await own.close();
      await closeAll(ownFront, solo);
    }
  });

  test('proxying prints no deprecation warnings (http-proxy on Node 22+ would: DEP0060, DEP0169)', () => {
    assert.deepEqual(
      warnings.map((w) => w.message),
      [],
    );
  });

  test('stats() reports per-target totals, in-flight and latency', async () => {
    const stats = lb.stats();
    assert.equal(stats.strategy, 'round-robin');
    assert.equal(stats.ready, 3);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.targets.length, 3);
    for (const t of stats.targets) {
      assert.ok(t.total > 0);
      assert.equal(t.inFlight, 0);
      assert.ok(t.latency > 0, 'latency EWMA is measured');
      assert.equal(t.state, 'up');
    }
  });
});

describe('proxy options', () => {
  test('changeOrigin sends the target host; Forwarded is appended when enabled', async () => {
    const b = await backend('b');
    const lb = loadBalance({ targets: [b.url], changeOrigin: true, forwarded: true });
    const front = await listen(lb);
    try {
      const { headers } = JSON.parse((await request(`${front.url}/echo`, { headers: { host: 'shop.example', forwarded: 'for=192.0.2.1' } })).body);
      assert.equal(headers.host, `127.0.0.1:${b.port}`);
      assert.equal(headers['x-forwarded-host'], 'shop.example');
      assert.equal(headers.forwarded, 'for=192.0.2.1, for=127.0.0.1;host=shop.example;proto=http');
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('a trusted proxy keeps its X-Forwarded-Proto/Host', async () => {
    const b = await backend('b');
    const lb = loadBalance({ targets: [b.url], trustProxy: 'loopback' });
    const front = await listen(lb);
    try {
      const { headers } = JSON.parse(
        (
          await request(`${front.url}/echo`, {
            headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example' },
          })
        ).body,
      );
      assert.equal(headers['x-forwarded-proto'], 'https');
      assert.equal(headers['x-forwarded-host'], 'shop.example');
      assert.equal(headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('a target URL path is prepended, and redirects to the target are rewritten to the client address', async () => {
    let selfUrl = '';
    const b = await listen((req, res) => {
      if (req.url === '/base/login') {
        res.writeHead(302, { location: `${selfUrl}/base/welcome?from=login`, 'content-location': `${selfUrl}/base/login` });
        res.end();
        return;
      }
      res.writeHead(302, { location: 'https://elsewhere.example/x' });
      res.end();
    });
    selfUrl = b.url;
    const lb = loadBalance({ targets: [`${b.url}/base`] });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/login`, { headers: { host: 'shop.example' } });
      assert.equal(reply.status, 302);
      assert.equal(reply.headers.location, 'http://shop.example/welcome?from=login');
      assert.equal(reply.headers['content-location'], 'http://shop.example/login');
      const other = await request(`${front.url}/other`);
      assert.equal(other.headers.location, 'https://elsewhere.example/x', 'foreign redirects are left alone');
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('invalid options throw a TypeError naming the option', () => {
    const cases: Array<[unknown, RegExp]> = [
      [undefined, /must be an object/],
      [{ targets: [] }, /options\.targets/],
      [{}, /options\.targets/],
      [{ targets: 'http://a' }, /options\.targets/],
      [{ targets: ['not a url'] }, /targets\[0\]: invalid URL/],
      [{ targets: ['ftp://a.example'] }, /targets\[0\]: URL must use http: or https:/],
      [{ targets: [{ url: 'http://a.example', weight: -1 }] }, /targets\[0\]: weight must be a positive/],
      [{ targets: [{ url: 'http://a.example', weight: Number.NaN }] }, /targets\[0\]: weight/],
      [{ targets: [{ url: 'http://a.example', bakup: true }] }, /^targets\[0\]: unknown option "bakup" — did you mean "backup"\?$/],
      [{ targets: [{ weight: 2 }] }, /^targets\[0\]: url must be a string or URL, got undefined$/],
      [
        { targets: [{ url: 'http://a.example', healthCheck: 'yes' }] },
        /^targets\[0\]: healthCheck must be a health checker, a probe function or false, got "yes"$/,
      ],
      [{ targets: ['http://a.example', 'http://a.example/'] }, /duplicate target/],
      [{ targets: ['http://a.example'], strategy: 'roundRobin' }, /options\.strategy/],
      [{ targets: ['http://a.example'], strategy: {} }, /options\.strategy/],
      [{ targets: ['http://a.example'], proxyTimeout: -5 }, /options\.proxyTimeout/],
      [{ targets: ['http://a.example'], timeout: '5s' }, /options\.timeout/],
      [{ targets: ['http://a.example'], retryAfter: 1.5 }, /options\.retryAfter/],
      [{ targets: ['http://a.example'], retryAfter: -1 }, /^loadBalance: options\.retryAfter must be a non-negative integer of seconds, got -1$/],
      [{ targets: ['http://a.example'], proxyTimeout: '5s' }, /^loadBalance: options\.proxyTimeout must be a non-negative number of milliseconds, got "5s"$/],
      [{ targets: ['http://a.example'], outlierDetection: 5 }, /^loadBalance: options\.outlierDetection must be an object or false, got 5$/],
      [
        { targets: ['http://a.example'], outlierDetection: { maxEjectionPercent: 101 } },
        /^loadBalance: options\.outlierDetection\.maxEjectionPercent must be an integer from 1 to 100, got 101$/,
      ],
      [
        { targets: ['http://a.example'], outlierDetection: { baseEjectionTime: 0 } },
        /^loadBalance: options\.outlierDetection\.baseEjectionTime must be a positive integer of milliseconds, got 0$/,
      ],
      [{ targets: ['http://a.example'], outlierDetection: { count5xx: 1 } }, /^loadBalance: options\.outlierDetection\.count5xx must be a boolean, got 1$/],
      [{ targets: ['http://a.example'], trustProxy: 1.5 }, /options\.trustProxy/],
      [{ targets: ['http://a.example'], trustProxy: ['not-an-ip'] }, /trustProxy/],
      [{ targets: ['http://a.example'], trustedHeader: 'x-real-ip' }, /options\.trustedHeader/],
      [{ targets: ['http://a.example'], hideHeaders: 'server' }, /options\.hideHeaders/],
      [{ targets: ['http://a.example'], agent: {} }, /options\.agent/],
      [{ targets: ['http://a.example'], changeOrigin: 'yes' }, /options\.changeOrigin/],
      [{ targets: ['http://a.example'], stategy: {} }, /unknown option "stategy"/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => loadBalance(options as never),
        (err: unknown) => err instanceof TypeError && message.test(err.message),
        `${JSON.stringify(options)} → ${message}`,
      );
    }
    assert.throws(() => loadBalance(5 as never), /^TypeError: loadBalance: options must be an object, got 5$/);
    assert.doesNotThrow(() => loadBalance({ targets: [], dynamic: true }).close());
  });
});
