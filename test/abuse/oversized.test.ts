import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { waitFor } from '../helpers.js';
import { countingBackend, front, raw, type CountingBackend, type Front } from './harness.js';

async function setup(
  options: Omit<LoadBalanceOptions, 'targets'>,
  handler?: Parameters<typeof countingBackend>[0],
): Promise<{ backend: CountingBackend; server: Front; close(): Promise<void> }> {
  const backend = await countingBackend(handler);
  const lb = loadBalance({ targets: [backend.url], ...options });
  const server = await front(lb);
  return { backend, server, close: async () => (await lb.close(), await server.close(), await backend.close()) };
}

function headers(count: number, size: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += `X-H${i}: ${'v'.repeat(size)}\r\n`;
  return out;
}

const chunk = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;

describe('oversized headers', () => {
  test("past Node's own 16 KiB head limit → 431 from Node, nothing reaches the backend", async () => {
    const t = await setup({});
    try {
      const reply = await raw(t.server.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      assert.deepEqual(reply.statuses, [431]);
      assert.ok(reply.closedByServer);
      assert.equal(t.backend.connections, 0);
    } finally {
      await t.close();
    }
  });

  test("maxHeaderSize → 431 below Node's limit; just under it passes", async () => {
    const t = await setup({ maxHeaderSize: 2048 });
    try {
      const over = await raw(t.server.port, `GET / HTTP/1.1\r\nHost: x\r\n${headers(10, 300)}\r\n`);
      assert.deepEqual(over.statuses, [431]);
      assert.ok(over.closedByServer);
      assert.equal(t.backend.connections, 0);
      const under = await raw(t.server.port, `GET / HTTP/1.1\r\nHost: x\r\n${headers(5, 300)}Connection: close\r\n\r\n`);
      assert.deepEqual(under.statuses, [200]);
      assert.equal(t.backend.arrivals.length, 1);
    } finally {
      await t.close();
    }
  });

  test('maxHeaders → 431 for too many fields', async () => {
    const t = await setup({ maxHeaders: 20 });
    try {
      const reply = await raw(t.server.port, `GET / HTTP/1.1\r\nHost: x\r\n${headers(30, 1)}\r\n`);
      assert.deepEqual(reply.statuses, [431]);
      assert.equal(t.backend.connections, 0);
    } finally {
      await t.close();
    }
  });
});

describe('oversized bodies (maxBodySize: 1000)', () => {
  test('a declared Content-Length over the limit → 413 before any byte of body is read; nothing reaches the backend', async () => {
    const t = await setup({ maxBodySize: 1000 });
    try {
      const reply = await raw(t.server.port, 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n');
      assert.deepEqual(reply.statuses, [413]);
      assert.match(reply.text, /\r\nconnection: close\r\n/i);
      assert.ok(reply.closedByServer, 'closed rather than reading 100 MB to keep the connection');
      assert.equal(t.backend.connections, 0);
    } finally {
      await t.close();
    }
  });

  test('a chunked body that grows past the limit → 413 mid-stream; the upstream request is aborted, never completed', async () => {
    const t = await setup({ maxBodySize: 1000 });
    try {
      const head = 'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
      const reply = await raw(t.server.port, [head, ...Array.from({ length: 10 }, () => chunk('B'.repeat(400))), '0\r\n\r\n'], { gapMs: 20 });
      assert.deepEqual(reply.statuses, [413]);
      assert.ok(reply.closedByServer);
      await waitFor(() => t.backend.open.size === 0);
      assert.equal(t.backend.arrivals.length, 1, 'the head went upstream before the body grew too large');
      const arrival = t.backend.arrivals[0]!;
      assert.equal(arrival.complete, false, 'the backend never saw the body end');
      assert.ok(arrival.bytes <= 1200, `the backend got ${arrival.bytes} bytes: at most one chunk past the limit`);
      assert.equal(t.backend.open.size, 0, 'no upstream socket left open');
    } finally {
      await t.close();
    }
  });

  test('a lying Content-Length cannot carry more: the backend gets exactly the declared bytes, the rest is parsed as garbage and refused', async () => {
    const t = await setup({ maxBodySize: 1000 });
    try {
      const reply = await raw(t.server.port, ['POST /lie HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nHELLO', 'A'.repeat(5000)], { gapMs: 150 });
      assert.deepEqual(reply.statuses, [200, 400]);
      assert.ok(reply.closedByServer);
      assert.equal(t.backend.arrivals.length, 1);
      assert.equal(t.backend.arrivals[0]!.body, 'HELLO');
      assert.equal(t.backend.arrivals[0]!.complete, true);
    } finally {
      await t.close();
    }
  });

  test('a body exactly at the limit passes whole', async () => {
    const t = await setup({ maxBodySize: 1000 });
    try {
      const chunked = await raw(
        t.server.port,
        `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk('C'.repeat(600))}${chunk('C'.repeat(400))}0\r\n\r\n`,
      );
      assert.deepEqual(chunked.statuses, [200]);
      const declared = await raw(t.server.port, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n${'D'.repeat(1000)}`);
      assert.deepEqual(declared.statuses, [200]);
      assert.deepEqual(
        t.backend.arrivals.map((a) => [a.bytes, a.complete]),
        [
          [1000, true],
          [1000, true],
        ],
      );
    } finally {
      await t.close();
    }
  });

  test('past the limit after the backend already answered: the client connection is cut (a truncated answer never looks complete)', async () => {
    const t = await setup({ maxBodySize: 1000 }, (req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('early');
      req.on('end', () => res.end('x'.repeat(100000 - 5)));
    });
    try {
      const head = 'POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
      const reply = await raw(t.server.port, [head, ...Array.from({ length: 10 }, () => chunk('E'.repeat(400))), '0\r\n\r\n'], { gapMs: 30 });
      assert.deepEqual(reply.statuses, [200]);
      assert.ok(reply.closedByServer);
      assert.ok(reply.text.length < 100_000, 'the 100000-byte body did not complete');
      await waitFor(() => t.backend.open.size === 0);
      assert.equal(t.backend.arrivals[0]!.complete, false);
      assert.equal(t.backend.open.size, 0);
    } finally {
      await t.close();
    }
  });
});
