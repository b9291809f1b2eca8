import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadBalance, serverTimeouts, type LoadBalancer } from 'proxy-balancer';
import { waitFor } from '../helpers.js';
import { countingBackend, front, raw, type CountingBackend, type Front } from './harness.js';

describe('slowloris: clients that trickle their request (serverTimeouts on the front server)', () => {
  let backend: CountingBackend;
  let lb: LoadBalancer;
  let server: Front;

  before(async () => {
    backend = await countingBackend();
    lb = loadBalance({ targets: [backend.url] });
    server = await front(lb, {}, (s) => serverTimeouts(s, { headersTimeout: 300, requestTimeout: 700, checkInterval: 50 }));
  });

  after(async () => {
    await lb.close();
    await server.close();
    await backend.close();
  });

  test('headers sent one byte every 40 ms → 408 once headersTimeout passes; the backend is never contacted', async () => {
    const head = 'GET / HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n';
    const reply = await raw(server.port, head.split(''), { gapMs: 40, idleMs: 3000 });
    assert.deepEqual(reply.statuses, [408]);
    assert.ok(reply.closedByServer);
    assert.ok(reply.elapsed >= 280 && reply.elapsed < 1500, `cut after ${reply.elapsed} ms`);
    assert.equal(backend.connections, 0);
  });

  test('a body sent one byte every 40 ms → 408 once requestTimeout passes; the upstream request is aborted and its socket closed', async () => {
    const head = 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n';
    const reply = await raw(server.port, [head, ...'x'.repeat(100).split('')], { gapMs: 40, idleMs: 3000 });
    assert.deepEqual(reply.statuses, [408]);
    assert.ok(reply.elapsed >= 650 && reply.elapsed < 2000, `cut after ${reply.elapsed} ms`);
    await waitFor(() => backend.open.size === 0);
    assert.equal(backend.arrivals.length, 1, 'the head was forwarded (bodies stream)');
    assert.equal(backend.arrivals[0]!.complete, false, 'but the body never completed');
    assert.ok(backend.arrivals[0]!.bytes < 100);
    assert.equal(backend.open.size, 0, 'no upstream socket left open');
    await waitFor(() => lb.stats().inFlight === 0);
    assert.equal(lb.stats().inFlight, 0);
  });

  test('a prompt client on the same server is unaffected', async () => {
    const reply = await raw(server.port, 'GET /quick HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(reply.statuses, [200]);
  });
});
