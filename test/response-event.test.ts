import assert from 'node:assert/strict';
import http, { type RequestListener } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import express5 from 'express';
import { loadBalance, type LoadBalanceOptions, type LoadBalancer, type ResponseInfo, responseCache } from 'proxy-balancer';
import { closeAll, deadPort, delay, listen, request, type TestServer, waitFor } from './helpers.js';

/** A backend: /slow/<ms> answers after ms, /cut sends half a body then resets, /cached is cacheable, the rest answers 'hello'. */
function upstream(): Promise<TestServer> {
  return listen((req, res) => {
    req.resume();
    const url = req.url ?? '';
    if (url.startsWith('/slow/')) {
      const timer = setTimeout(() => res.end('late'), Number(url.slice(6).split('?')[0]));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    if (url === '/cut') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    if (url === '/cached') res.setHeader('cache-control', 'public, max-age=60');
    res.end('hello');
  });
}

/** A balancer in front of `handler(lb)`, recording every `response` event. */
async function observed(options: LoadBalanceOptions, mount: (lb: LoadBalancer) => RequestListener = (lb) => lb) {
  const lb = loadBalance(options);
  const events: ResponseInfo[] = [];
  lb.on('response', (info) => events.push(info));
  const front = await listen(mount(lb));
  return {
    lb,
    events,
    front,
    /** Waits for the nth event (1-based). */
    async nth(n: number): Promise<ResponseInfo> {
      await waitFor(() => events.length >= n);
      assert.ok(events.length >= n, `event ${n} arrived`);
      return events[n - 1]!;
    },
    close: async () => {
      await lb.close();
      await front.close();
    },
  };
}

/** Sends raw requests on one keep-alive connection, one after the other; returns the bytes each response took. */
function keepAlive(port: number, requests: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const sizes: number[] = [];
    let pending = '';
    let index = 0;
    socket.on('error', reject);
    socket.on('connect', () => socket.write(requests[0]!));
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      // Every response here has a Content-Length; a response is complete when its body is in.
      const headEnd = pending.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(pending.slice(0, headEnd))?.[1] ?? 0);
      if (pending.length < headEnd + 4 + length) return;
      sizes.push(headEnd + 4 + length);
      pending = pending.slice(headEnd + 4 + length);
      if (++index === requests.length) {
        socket.end();
        resolve(sizes);
      } else socket.write(requests[index]!);
    });
  });
}

describe("the 'response' event", () => {
  let up: TestServer;
  before(async () => {
    up = await upstream();
  });
  after(() => closeAll(up));

  test('a proxied exchange: original URL under a mount, status, target, attempts, timings, cache status, client IP', async () => {
    const t = await observed({ targets: [up.url] }, (lb) => express5().use('/api', lb) as unknown as RequestListener);
    try {
      const reply = await request(`${t.front.url}/api/slow/60?x=1`);
      assert.equal(reply.status, 200);
      const info = await t.nth(1);
      assert.equal(info.method, 'GET');
      assert.equal(info.url, '/api/slow/60?x=1', 'the URL the client sent, not the stripped one');
      assert.equal(info.status, 200);
      assert.equal(info.target, up.url);
      assert.equal(info.attempts, 1);
      assert.ok(info.headMs >= 55 && info.headMs <= info.durationMs, `head ${info.headMs} ms, end ${info.durationMs} ms`);
      assert.ok(Math.abs(info.time - Date.now()) < 5000);
      assert.equal(info.cacheStatus, undefined);
      assert.equal(info.clientIp, '127.0.0.1');
      assert.equal(info.aborted, false);
      assert.equal(info.error, undefined);
      assert.equal(t.events.length, 1, 'once per exchange');
    } finally {
      await t.close();
    }
  });

  test('bytes in and out are each exchange’s own share of a keep-alive connection, headers included', async () => {
    const t = await observed({ targets: [up.url] });
    try {
      const first = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
      const second = `POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n${'y'.repeat(300)}`;
      const sizes = await keepAlive(t.front.port, [first, second]);
      await t.nth(2);
      assert.deepEqual(
        t.events.map((e) => [e.bytesIn, e.bytesOut]),
        [
          [first.length, sizes[0]],
          [second.length, sizes[1]],
        ],
      );
    } finally {
      await t.close();
    }
  });

  test('answers from the cache: MISS with a target, then HIT with none and no attempts', async () => {
    const t = await observed({ targets: [up.url], cache: responseCache() });
    try {
      await request(`${t.front.url}/cached`);
      await request(`${t.front.url}/cached`);
      const [miss, hit] = [await t.nth(1), await t.nth(2)];
      assert.deepEqual([miss.cacheStatus, miss.target, miss.attempts, miss.status], ['MISS', up.url, 1, 200]);
      assert.deepEqual([hit.cacheStatus, hit.target, hit.attempts, hit.status], ['HIT', undefined, 0, 200]);
      assert.ok(hit.headMs <= hit.durationMs);
      const post = await request(`${t.front.url}/cached`, { method: 'POST' });
      assert.equal(post.status, 200);
      assert.equal((await t.nth(3)).cacheStatus, 'BYPASS');
    } finally {
      await t.close();
    }
  });

  test('refusals: a protection (405), no target (503) and an unusable request target (400), none with a target', async () => {
    const t = await observed({ targets: [up.url], allowedMethods: ['GET'] });
    try {
      assert.equal((await request(t.front.url, { method: 'PUT' })).status, 405);
      t.lb.pool.drain(up.url);
      assert.equal((await request(t.front.url)).status, 503);
      const raw = await new Promise<string>((resolve) => {
        const socket = net.connect(t.front.port, '127.0.0.1', () => socket.end('OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'));
        let text = '';
        socket.on('data', (c: Buffer) => (text += c));
        socket.on('close', () => resolve(text));
      });
      assert.match(raw, /^HTTP\/1\.1 400/);
      await t.nth(3);
      assert.deepEqual(
        t.events.map((e) => [e.method, e.url, e.status, e.target, e.attempts]),
        [
          ['PUT', '/', 405, undefined, 0],
          ['GET', '/', 503, undefined, 0],
          ['OPTIONS', '*', 400, undefined, 0],
        ],
      );
    } finally {
      await t.close();
    }
  });

  test('upstream failures: 502 with the error and one attempt, a retry that succeeds with two, 504 on the deadline', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const failing = await observed({ targets: [dead], retry: false });
    const retrying = await observed({ targets: [dead, up.url], strategy: (targets) => targets.find((x) => x.key === dead) });
    const slow = await observed({ targets: [up.url], timeout: 50 });
    try {
      assert.equal((await request(failing.front.url)).status, 502);
      const failed = await failing.nth(1);
      assert.deepEqual([failed.status, failed.target, failed.attempts, failed.aborted], [502, dead, 1, false]);
      assert.equal((failed.error as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
      assert.equal((await request(retrying.front.url)).body, 'hello');
      const retried = await retrying.nth(1);
      assert.deepEqual([retried.status, retried.target, retried.attempts, retried.error], [200, up.url, 2, undefined]);
      assert.equal((await request(`${slow.front.url}/slow/1000`)).status, 504);
      const late = await slow.nth(1);
      assert.deepEqual([late.status, late.attempts, (late.error as NodeJS.ErrnoException | undefined)?.code], [504, 1, 'ETIMEDOUT']);
    } finally {
      await Promise.all([failing.close(), retrying.close(), slow.close()]);
    }
  });

  test('a client that leaves before the head, and a body cut upstream: aborted, status 0 and NaN head time for the first', async () => {
    const t = await observed({ targets: [up.url] });
    try {
      const req = http.get(`${t.front.url}/slow/2000`, { agent: false });
      req.on('error', () => {});
      await delay(100);
      req.destroy();
      const left = await t.nth(1);
      assert.deepEqual([left.status, left.aborted, left.target, left.attempts], [0, true, up.url, 1]);
      assert.ok(Number.isNaN(left.headMs));
      assert.ok(left.durationMs >= 40 && left.durationMs < 1500, JSON.stringify(left));
      await assert.rejects(request(`${t.front.url}/cut`));
      const cut = await t.nth(2);
      assert.deepEqual([cut.status, cut.aborted], [200, true]);
      assert.ok(cut.error instanceof Error);
    } finally {
      await t.close();
    }
  });

  test('the client IP follows trustProxy; pathRewrite does not change the reported URL', async () => {
    const t = await observed({ targets: [up.url], trustProxy: 'loopback', pathRewrite: { '^/api': '' } });
    try {
      await request(`${t.front.url}/api/x`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      const info = await t.nth(1);
      assert.equal(info.clientIp, '203.0.113.7');
      assert.equal(info.url, '/api/x');
    } finally {
      await t.close();
    }
  });

  test('nothing is watched while no one listens; a listener that throws is a warning, not a crash', async () => {
    const lb = loadBalance({ targets: [up.url] });
    const closeListeners: number[] = [];
    const front = await listen((req, res) => {
      lb(req, res);
      closeListeners.push(res.listenerCount('close'));
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      await request(front.url);
      const listener = () => {
        throw new Error('logger broke');
      };
      lb.on('response', listener);
      assert.equal((await request(front.url)).status, 200);
      lb.off('response', listener);
      await request(front.url);
      assert.deepEqual(closeListeners, [closeListeners[0], closeListeners[0]! + 1, closeListeners[0]], 'one close listener, only while listened to');
      await waitFor(() => warnings.length > 0);
      assert.ok(warnings.some((w) => w.includes("a 'response' listener threw") && w.includes('logger broke')));
    } finally {
      process.off('warning', onWarning);
      await lb.close();
      await front.close();
    }
  });
});
