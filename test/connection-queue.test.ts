import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import http from 'node:http';
import { describe, test } from 'node:test';
import { leastConnections, loadBalance } from 'proxy-balancer';
import { closeAll, deadPort, delay, listen, request, waitFor, type Reply, type TestServer } from './helpers.js';

/** A backend that holds every request until `release()`, recording how many it held at once. */
async function heldBackend(name = 'held'): Promise<TestServer & { held: ServerResponse[]; peak: number; release(): void }> {
  const held: ServerResponse[] = [];
  const counts = { peak: 0 };
  const server = await listen((req, res) => {
    req.resume();
    held.push(res);
    counts.peak = Math.max(counts.peak, held.length);
    const drop = () => held.includes(res) && held.splice(held.indexOf(res), 1);
    res.on('finish', drop);
    res.on('close', drop);
  });
  Object.defineProperty(server, 'peak', { get: () => counts.peak });
  return Object.assign(server as TestServer & { peak: number }, {
    held,
    release: () => {
      for (const res of [...held]) if (!res.writableEnded) res.end(name);
    },
  });
}

function settle(promises: Array<Promise<Reply>>): Promise<number[]> {
  return Promise.all(
    promises.map((p) =>
      p.then(
        (r) => r.status,
        () => -1,
      ),
    ),
  );
}

describe('maxConnections and the queue', () => {
  test('a slow backend sees at most maxConnections; maxQueue more wait, the rest get 503 at once; waiting ones are served as slots free', async () => {
    const up = await heldBackend();
    const lb = loadBalance({ targets: [up.url], maxConnections: 2, maxQueue: 2, queueTimeout: 5000, retryAfter: 7 });
    const front = await listen(lb);
    try {
      const replies = Array.from({ length: 6 }, (_, i) => request(`${front.url}/${i}`));
      await waitFor(() => up.held.length === 2 && lb.stats().targets[0]!.queued === 2);
      assert.equal(lb.stats().targets[0]!.queued, 2);
      const early = await Promise.race([settle(replies.slice(4)), delay(1000).then(() => 'timeout')]);
      assert.deepEqual(early, [503, 503], 'past the queue: 503 at once');
      const refused = await replies[5]!;
      assert.equal(refused.headers['retry-after'], '7');
      up.release();
      await waitFor(() => up.hits === 4 && up.held.length === 2);
      assert.equal(up.hits, 4, 'the two waiting requests took the freed slots');
      up.release();
      assert.deepEqual(await settle(replies.slice(0, 4)), [200, 200, 200, 200]);
      assert.equal(up.peak, 2, 'never more than maxConnections at the backend');
      assert.equal(up.hits, 4);
      assert.equal(lb.stats().targets[0]!.queued, 0);
    } finally {
      up.release();
      await lb.close();
      await closeAll(front, up);
    }
  });

  test('queueTimeout: a request that waits too long gets 503; a client that leaves the queue is never forwarded', async () => {
    const up = await heldBackend();
    const lb = loadBalance({ targets: [up.url], maxConnections: 1, queueTimeout: 200 });
    const front = await listen(lb);
    try {
      const first = request(`${front.url}/first`);
      await waitFor(() => up.held.length === 1);
      const started = Date.now();
      const waited = await request(`${front.url}/second`);
      assert.equal(waited.status, 503);
      assert.ok(Date.now() - started >= 180, `answered after ${Date.now() - started} ms`);
      const leaving = http.get(`${front.url}/leaving`, { agent: false });
      leaving.on('error', () => {});
      await waitFor(() => lb.stats().targets[0]!.queued === 1);
      leaving.destroy();
      await waitFor(() => lb.stats().targets[0]!.queued === 0);
      assert.equal(lb.stats().targets[0]!.queued, 0, 'the queue forgets a client that left');
      up.release();
      assert.equal((await first).status, 200);
      await delay(50);
      assert.equal(up.hits, 1, 'neither the timed-out nor the departed request reached the backend');
    } finally {
      up.release();
      await lb.close();
      await closeAll(front, up);
    }
  });

  test('with leastConnections, a full target is passed over while another has room', async () => {
    const a = await heldBackend('a');
    const b = await heldBackend('b');
    const lb = loadBalance({ targets: [a.url, b.url], strategy: leastConnections(), maxConnections: 1 });
    const front = await listen(lb);
    try {
      const replies = [request(`${front.url}/1`), request(`${front.url}/2`)];
      await waitFor(() => a.held.length + b.held.length === 2);
      assert.equal(a.held.length, 1);
      assert.equal(b.held.length, 1);
      a.release();
      b.release();
      assert.deepEqual(await settle(replies), [200, 200]);
    } finally {
      a.release();
      b.release();
      await lb.close();
      await closeAll(front, a, b);
    }
  });

  test('a target leaving rotation while requests wait for it: they are chosen again, elsewhere', async () => {
    const seen: Record<string, string[]> = { a: [], b: [] };
    const a = await heldBackend('a');
    const b = await heldBackend('b');
    a.server.on('request', (req) => seen.a!.push(req.url ?? ''));
    b.server.on('request', (req) => seen.b!.push(req.url ?? ''));
    const lb = loadBalance({ targets: [a.url, b.url], maxConnections: 1, queueTimeout: 5000 });
    const front = await listen(lb);
    try {
      const one = request(`${front.url}/1`);
      await waitFor(() => a.held.length === 1);
      const two = request(`${front.url}/2`);
      await waitFor(() => b.held.length === 1);
      const three = request(`${front.url}/3`);
      await waitFor(() => lb.stats().targets[0]!.queued === 1);
      assert.equal(lb.stats().targets[0]!.queued, 1, '/3 waits for a (round robin picked it)');
      const drained = lb.pool.drain(a.url);
      b.release();
      assert.equal((await two).status, 200);
      a.release();
      assert.equal((await one).status, 200);
      assert.equal(await drained, true);
      await waitFor(() => b.held.length === 1);
      b.release();
      assert.equal((await three).status, 200);
      assert.deepEqual(seen, { a: ['/1'], b: ['/2', '/3'] });
    } finally {
      a.release();
      b.release();
      await lb.close();
      await closeAll(front, a, b);
    }
  });

  test('lb.close() answers 503 to waiting requests', async () => {
    const up = await heldBackend();
    const lb = loadBalance({ targets: [up.url], maxConnections: 1 });
    const front = await listen(lb);
    try {
      const first = request(`${front.url}/1`);
      await waitFor(() => up.held.length === 1);
      const waiting = request(`${front.url}/2`);
      await waitFor(() => lb.stats().targets[0]!.queued === 1);
      const closing = lb.close();
      assert.equal((await waiting).status, 503);
      up.release();
      assert.equal((await first).status, 200);
      await closing;
    } finally {
      up.release();
      await closeAll(front, up);
    }
  });

  test('WebSocket handshakes do not queue: a full target refuses them with 503', async () => {
    const up = await heldBackend();
    const lb = loadBalance({ targets: [up.url], maxConnections: 1 });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    try {
      const first = request(`${front.url}/1`);
      await waitFor(() => up.held.length === 1);
      const reply = await new Promise<string>((resolve) => {
        const socket = net.connect(front.port, '127.0.0.1');
        let text = '';
        socket.on('data', (c: Buffer) => (text += c));
        socket.on('close', () => resolve(text));
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      });
      assert.match(reply, /^HTTP\/1\.1 503 /);
      up.release();
      assert.equal((await first).status, 200);
    } finally {
      up.release();
      await lb.close();
      await closeAll(front, up);
    }
  });
});

describe('circuit breaker', () => {
  test('maxRequests: past it, requests get 503 at once', async () => {
    const up = await heldBackend();
    const lb = loadBalance({ targets: [up.url], circuitBreaker: { maxRequests: 2 } });
    const front = await listen(lb);
    try {
      const held = [request(`${front.url}/1`), request(`${front.url}/2`)];
      await waitFor(() => up.held.length === 2);
      assert.equal((await request(`${front.url}/3`)).status, 503);
      up.release();
      assert.deepEqual(await settle(held), [200, 200]);
      const after = request(`${front.url}/4`);
      await waitFor(() => up.held.length === 1);
      up.release();
      assert.equal((await after).status, 200, 'admitted again once below the cap');
    } finally {
      up.release();
      await lb.close();
      await closeAll(front, up);
    }
  });

  test('maxPending: waiting requests over the whole pool are capped', async () => {
    const a = await heldBackend('a');
    const b = await heldBackend('b');
    const lb = loadBalance({ targets: [a.url, b.url], maxConnections: 1, maxQueue: 10, circuitBreaker: { maxPending: 1 } });
    const front = await listen(lb);
    try {
      const running = [request(`${front.url}/1`), request(`${front.url}/2`)];
      await waitFor(() => a.held.length === 1 && b.held.length === 1);
      const queued = request(`${front.url}/3`);
      await waitFor(() => lb.stats().targets.reduce((n, t) => n + t.queued, 0) === 1);
      assert.equal((await request(`${front.url}/4`)).status, 503, 'the pool already has one pending');
      a.release();
      b.release();
      await waitFor(() => a.held.length + b.held.length === 1);
      a.release();
      b.release();
      assert.deepEqual(await settle([...running, queued]), [200, 200, 200]);
    } finally {
      a.release();
      b.release();
      await lb.close();
      await closeAll(front, a, b);
    }
  });

  test('maxRetries: retries in flight are capped; a failure past the cap is answered instead of retried', async () => {
    const ports = [await deadPort(), await deadPort(), await deadPort()];
    const capped = loadBalance({
      targets: ports.map((p) => `http://127.0.0.1:${p}`),
      outlierDetection: false,
      // tryDuration: 0: the two retries are all there is (refused connections would be tried on for 1 s).
      retry: { retries: 2, tryDuration: 0 },
      circuitBreaker: { maxRetries: 1 },
    });
    const free = loadBalance({ targets: ports.map((p) => `http://127.0.0.1:${p}`), outlierDetection: false, retry: { retries: 2, tryDuration: 0 } });
    const frontCapped = await listen(capped);
    const frontFree = await listen(free);
    try {
      assert.equal((await request(`${frontFree.url}/`)).status, 502);
      assert.equal(free.stats().retries, 2, 'without the cap: two retries');
      assert.equal((await request(`${frontCapped.url}/`)).status, 502);
      assert.equal(capped.stats().retries, 2, 'one at a time is still two in a row');
      const burst = await settle(Array.from({ length: 5 }, () => request(`${frontCapped.url}/`)));
      assert.deepEqual(burst, [502, 502, 502, 502, 502]);
      assert.ok(capped.stats().retries < 2 + 5 * 2, `the cap held concurrent retries back (${capped.stats().retries} retries)`);
    } finally {
      await capped.close();
      await free.close();
      await closeAll(frontCapped, frontFree);
    }
  });
});
