import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadBalance, memoryRateLimitStore } from 'proxy-balancer';
import { countingBackend, front } from './harness.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Pipelines one GET per address on one keep-alive socket; resolves with the status of each. */
function pipeline(port: number, addresses: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))));
    let out = '';
    addresses.forEach((ip, i) => {
      out += `GET /flood HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}${i === addresses.length - 1 ? '\r\nConnection: close' : ''}\r\n\r\n`;
    });
    socket.write(out);
  });
}

const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

describe('a flood of distinct client addresses against the rate limiter', () => {
  test('1,500 addresses through the balancer: the store never holds more than maxKeys; recent repeat offenders stay limited', async (t) => {
    const backend = await countingBackend();
    const store = memoryRateLimitStore({ maxKeys: 300 });
    const lb = loadBalance({ targets: [backend.url], trustProxy: 'loopback', rateLimit: { limit: 1, store } });
    const server = await front(lb);
    try {
      const addresses = Array.from({ length: 1500 }, (_, i) => ip(i));
      const statuses: number[] = [];
      // 15 connections of 100 pipelined requests, 5 connections at a time: Node hands every
      // pipelined request to the balancer at once, so this bounds the upstream concurrency.
      for (let group = 0; group < 3; group++) {
        const batches = Array.from({ length: 5 }, (_, b) => addresses.slice((group * 5 + b) * 100, (group * 5 + b + 1) * 100));
        statuses.push(...(await Promise.all(batches.map((batch) => pipeline(server.port, batch)))).flat());
      }
      assert.equal(statuses.length, 1500);
      assert.ok(
        statuses.every((s) => s === 200),
        'each new address starts with a full bucket',
      );
      assert.equal(store.size, 300, 'bounded by maxKeys');
      const again = (await Promise.all([0, 1, 2].map((b) => pipeline(server.port, addresses.slice(1200 + b * 100, 1300 + b * 100))))).flat();
      assert.ok(
        again.every((s) => s === 429),
        'the most recent addresses are still remembered and limited',
      );
      assert.equal(store.size, 300);
      assert.equal(backend.arrivals.length, 1500, 'the repeat offenders never reached the backend');
      t.diagnostic(`1500 distinct addresses, store size ${store.size}`);
    } finally {
      await lb.close();
      await server.close();
      await backend.close();
    }
  });

  test('memory stays bounded: 100,000 distinct keys cost what 10,000 do with the default maxKeys', (t) => {
    const bucket = { capacity: 10, refillPerMs: 10 / 60_000 };
    const baseline = heapAfterGc();
    const store = memoryRateLimitStore();
    for (let i = 0; i < 10_000; i++) store.take(ip(i), 1, 0, bucket);
    const tenThousand = heapAfterGc() - baseline;
    for (let i = 10_000; i < 100_000; i++) store.take(ip(i), 1, 0, bucket);
    const hundredThousand = heapAfterGc() - baseline;
    assert.equal(store.size, 10_000);
    t.diagnostic(
      `heap for 10,000 keys: ${(tenThousand / 1048576).toFixed(2)} MiB; after 100,000 distinct keys: ${(hundredThousand / 1048576).toFixed(2)} MiB (${Math.round(hundredThousand / store.size)} B per tracked key)`,
    );
    assert.ok(hundredThousand < tenThousand * 1.5 + 1048576, `grew from ${tenThousand} to ${hundredThousand} bytes`);
    assert.ok(hundredThousand < 8 * 1048576, 'under 8 MiB for 10,000 tracked keys');
  });
});
