import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBalance } from 'proxy-balancer';
import { waitFor } from '../helpers.js';
import { countingBackend, front, raw } from './harness.js';

describe('a backend that resets the connection', () => {
  test('mid-body with Content-Length: the client gets the head, then a cut connection, never a short body posing as complete', async () => {
    const backend = await countingBackend((_req, res) => {
      res.writeHead(200, { 'content-length': '10000' });
      res.write('x'.repeat(1000), () => setTimeout(() => res.socket?.resetAndDestroy(), 20));
    });
    const lb = loadBalance({ targets: [backend.url] });
    const server = await front(lb);
    try {
      const reply = await raw(server.port, 'GET /file HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 2000 });
      assert.deepEqual(reply.statuses, [200]);
      assert.ok(reply.closedByServer, 'the front closed the client connection');
      const body = reply.text.slice(reply.text.indexOf('\r\n\r\n') + 4);
      assert.ok(body.length < 10_000, `${body.length} of 10000 bytes`);
      assert.equal(backend.arrivals.length, 1, 'not retried: part of the answer was already relayed');
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await server.close();
      await backend.close();
    }
  });

  test('mid-body with chunked encoding: the client never sees the terminating chunk', async () => {
    const backend = await countingBackend((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial ', () => setTimeout(() => res.socket?.resetAndDestroy(), 20));
    });
    const lb = loadBalance({ targets: [backend.url] });
    const server = await front(lb);
    try {
      const reply = await raw(server.port, 'GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 2000 });
      assert.deepEqual(reply.statuses, [200]);
      assert.ok(reply.closedByServer);
      assert.match(reply.text, /transfer-encoding: chunked/i);
      assert.ok(reply.text.includes('partial'));
      assert.ok(!reply.text.endsWith('0\r\n\r\n'), 'no final chunk');
    } finally {
      await lb.close();
      await server.close();
      await backend.close();
    }
  });

  test('while the client is still uploading: 502 (nothing was relayed yet), and the upload is not retried', async () => {
    const backend = await countingBackend((req, _res, arrival) => {
      req.on('data', () => {
        if (arrival.bytes >= 1000) req.socket.resetAndDestroy();
      });
    });
    const lb = loadBalance({ targets: [backend.url] });
    const server = await front(lb);
    try {
      const head = 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n';
      const reply = await raw(server.port, [head, ...Array.from({ length: 50 }, () => 'y'.repeat(1000))], { gapMs: 5, idleMs: 2000 });
      assert.deepEqual(reply.statuses, [502]);
      assert.ok(reply.closedByServer && reply.elapsed < 1500, 'closed at once rather than reading the rest of the upload');
      assert.equal(reply.text.includes(String(backend.port)), false);
      assert.equal(backend.arrivals.length, 1, 'POST is not retried');
      assert.equal(backend.arrivals[0]!.complete, false);
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await server.close();
      await backend.close();
    }
  });
});
