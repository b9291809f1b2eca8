import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { loadBalance, memoryRateLimitStore, type LoadBalanceOptions } from 'proxy-balancer';
import { backend, closeAll, delay, listen, rawRequest, request, type TestServer } from './helpers.js';

async function setup(
  options: Omit<LoadBalanceOptions, 'targets'>,
): Promise<{ up: TestServer; front: TestServer; lb: ReturnType<typeof loadBalance>; close(): Promise<void> }> {
  const up = await backend('a');
  const lb = loadBalance({ targets: [up.url], ...options });
  const front = await listen(lb);
  front.server.on('upgrade', lb.upgrade);
  return { up, front, lb, close: async () => (await lb.close(), await closeAll(front, up)) };
}

describe('memory rate-limit store (token bucket)', () => {
  const bucket = { capacity: 3, refillPerMs: 1 / 1000 };

  test('spends the burst, refuses with the wait until the next token, refills continuously up to capacity', () => {
    const store = memoryRateLimitStore();
    const t0 = 1_000_000;
    assert.deepEqual(store.take('k', 1, t0, bucket), { allowed: true, remaining: 2, resetMs: 1000 });
    assert.deepEqual(store.take('k', 1, t0, bucket), { allowed: true, remaining: 1, resetMs: 2000 });
    assert.deepEqual(store.take('k', 1, t0, bucket), { allowed: true, remaining: 0, resetMs: 3000 });
    assert.deepEqual(store.take('k', 1, t0, bucket), { allowed: false, remaining: 0, resetMs: 1000 });
    assert.deepEqual(store.take('k', 1, t0 + 400, bucket), { allowed: false, remaining: 0, resetMs: 600 });
    assert.deepEqual(store.take('k', 1, t0 + 1000, bucket), { allowed: true, remaining: 0, resetMs: 3000 });
    assert.deepEqual(store.take('k', 1, t0 + 60_000, bucket), { allowed: true, remaining: 2, resetMs: 1000 }, 'never more than capacity');
    assert.equal(store.take('other', 1, t0, bucket).remaining, 2, 'keys are independent');
  });

  test('a clock that steps back does not refill twice', () => {
    const store = memoryRateLimitStore();
    for (let i = 0; i < 3; i++) store.take('k', 1, 10_000, bucket);
    assert.equal(store.take('k', 1, 5_000, bucket).allowed, false);
    assert.equal(store.take('k', 1, 5_999, bucket).allowed, false);
    assert.equal(store.take('k', 1, 6_000, bucket).allowed, true);
  });

  test('holds at most maxKeys keys, forgetting the least recently seen', () => {
    const store = memoryRateLimitStore({ maxKeys: 100 });
    for (let i = 0; i < 1000; i++) store.take(`10.0.${i >> 8}.${i & 255}`, 1, 0, bucket);
    assert.equal(store.size, 100);
    store.take('hot', 1, 0, bucket);
    store.take('hot', 1, 0, bucket);
    for (let i = 0; i < 50; i++) store.take(`x${i}`, 1, 0, bucket);
    assert.equal(store.take('hot', 1, 0, bucket).remaining, 0, 'a recently seen key is kept');
  });
});

describe('rateLimit option', () => {
  test('429 with Retry-After and RateLimit-* once the burst is spent; allowed answers carry RateLimit-*; tokens come back', async () => {
    const t = await setup({ rateLimit: { limit: 4, windowMs: 1000, burst: 2 } });
    try {
      const first = await request(`${t.front.url}/`);
      assert.equal(first.status, 200);
      assert.equal(first.headers['ratelimit-limit'], '2');
      assert.equal(first.headers['ratelimit-remaining'], '1');
      assert.equal(first.headers['ratelimit-policy'], '4;w=1;burst=2');
      assert.equal((await request(`${t.front.url}/`)).headers['ratelimit-remaining'], '0');
      const refused = await request(`${t.front.url}/`);
      assert.equal(refused.status, 429);
      assert.equal(refused.body, 'Too Many Requests\n');
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(refused.headers['ratelimit-remaining'], '0');
      assert.equal(refused.headers['ratelimit-reset'], '1');
      assert.equal(refused.headers['cache-control'], 'no-store');
      assert.equal(t.up.hits, 2);
      await delay(300);
      assert.equal((await request(`${t.front.url}/`)).status, 200, 'a token refilled after 250 ms');
      assert.equal(t.up.hits, 3);
    } finally {
      await t.close();
    }
  });

  test('key function: counted per API key, exempt when it returns undefined; headers: false', async () => {
    const t = await setup({ rateLimit: { limit: 1, key: (req) => req.headers['x-api-key'] as string | undefined, headers: false } });
    const as = (key?: string) => request(`${t.front.url}/`, { headers: key === undefined ? {} : { 'x-api-key': key } });
    try {
      const ok = await as('alice');
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['ratelimit-remaining'], undefined);
      assert.equal((await as('alice')).status, 429);
      assert.equal((await as('bob')).status, 200);
      for (let i = 0; i < 3; i++) assert.equal((await as()).status, 200, 'no key: exempt');
      assert.equal((await as('alice')).headers['retry-after'], '60');
    } finally {
      await t.close();
    }
  });

  test('IPv6 clients are counted per /64 by default (an address rotating inside its prefix is one client); ipv6Subnet: 128 counts each address', async () => {
    const grouped = await setup({ trustProxy: 'loopback', rateLimit: { limit: 2 } });
    const each = await setup({ trustProxy: 'loopback', rateLimit: { limit: 2, ipv6Subnet: 128 } });
    const from = (t: typeof grouped, ip: string) => request(`${t.front.url}/`, { headers: { 'x-forwarded-for': ip } }).then((r) => r.status);
    try {
      const rotating = ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff:0:0:3', '2001:db8:1:2::4'];
      const statuses = [];
      for (const ip of rotating) statuses.push(await from(grouped, ip));
      assert.deepEqual(statuses, [200, 200, 429, 429]);
      assert.equal(await from(grouped, '2001:db8:1:3::1'), 200, 'the next /64 is another client');
      assert.equal(await from(grouped, '::ffff:10.0.0.1'), 200);
      assert.equal(await from(grouped, '10.0.0.1'), 200, 'an IPv4-mapped address is its IPv4 address');
      assert.equal(await from(grouped, '10.0.0.1'), 429);
      const perAddress = [];
      for (const ip of rotating) perAddress.push(await from(each, ip));
      assert.deepEqual(perAddress, [200, 200, 200, 200]);
    } finally {
      await closeAll(grouped, each);
    }
  });

  test('a key function that throws gets a 500, not a crash', async () => {
    const t = await setup({
      rateLimit: {
        limit: 5,
        key: () => {
          throw new Error('bad key');
        },
      },
    });
    try {
      assert.equal((await request(`${t.front.url}/`)).status, 500);
      assert.equal(t.up.hits, 0);
    } finally {
      await t.close();
    }
  });

  test('WebSocket handshakes are limited too: 429 on the raw socket', async () => {
    const t = await setup({ rateLimit: { limit: 1 } });
    const handshake =
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    try {
      assert.equal((await request(`${t.front.url}/`)).status, 200);
      const reply = await rawRequest(t.front.port, handshake);
      assert.match(reply, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
      assert.match(reply, /retry-after: 60\r\n/);
      assert.equal(t.up.hits, 1);
    } finally {
      await t.close();
    }
  });

  test('one store shared by two balancers shares the limit', async () => {
    const store = memoryRateLimitStore();
    const a = await setup({ rateLimit: { limit: 2, store } });
    const b = await setup({ rateLimit: { limit: 2, store } });
    try {
      assert.equal((await request(`${a.front.url}/`)).status, 200);
      assert.equal((await request(`${b.front.url}/`)).status, 200);
      assert.equal((await request(`${a.front.url}/`)).status, 429);
      assert.equal((await request(`${b.front.url}/`)).status, 429);
    } finally {
      await closeAll(a, b);
    }
  });

  test('keep-alive clients over the limit keep their connection when they sent no body', async () => {
    const t = await setup({ rateLimit: { limit: 1 } });
    try {
      const socket = net.connect(t.front.port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await new Promise((resolve) => socket.on('close', resolve));
      assert.deepEqual(
        [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]),
        ['200', '429', '429'],
      );
    } finally {
      await t.close();
    }
  });
});
