import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { loadBalance, memoryRateLimitStore, redisRateLimitStore, serverTimeouts, type LoadBalanceOptions } from 'proxy-balancer';
import { backend, closeAll, delay, listen, request, waitFor, type TestServer } from './helpers.js';

/** A balancer in front of one fresh backend, for one test. */
async function setup(
  options: Omit<LoadBalanceOptions, 'targets'>,
): Promise<{ up: TestServer; front: TestServer; lb: ReturnType<typeof loadBalance>; close(): Promise<void> }> {
  const up = await backend('a');
  const lb = loadBalance({ targets: [up.url], ...options });
  const front = await listen(lb);
  return { up, front, lb, close: async () => (await lb.close(), await closeAll(front, up)) };
}

describe('protection options are validated', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['rateLimit not an object', { rateLimit: 5 }, /options\.rateLimit must be/],
    ['rateLimit without limit', { rateLimit: {} }, /options\.rateLimit\.limit must be a positive integer/],
    ['rateLimit.windowMs negative', { rateLimit: { limit: 1, windowMs: -1 } }, /options\.rateLimit\.windowMs/],
    ['rateLimit.burst fractional', { rateLimit: { limit: 1, burst: 1.5 } }, /options\.rateLimit\.burst/],
    ['rateLimit typo', { rateLimit: { limit: 1, window: 1000 } }, /unknown option "rateLimit\.window" — did you mean "rateLimit\.windowMs"\?/],
    ['rateLimit.store without take', { rateLimit: { limit: 1, store: {} } }, /options\.rateLimit\.store/],
    ['rateLimit.maxKeys with a store', { rateLimit: { limit: 1, store: memoryRateLimitStore(), maxKeys: 5 } }, /options\.rateLimit\.maxKeys/],
    ['rateLimit.key not a function', { rateLimit: { limit: 1, key: 'ip' } }, /options\.rateLimit\.key/],
    ['rateLimit.ipv6Subnet out of range', { rateLimit: { limit: 1, ipv6Subnet: 129 } }, /options\.rateLimit\.ipv6Subnet/],
    [
      'rateLimit.ipv6Subnet with a key function',
      { rateLimit: { limit: 1, ipv6Subnet: 48, key: () => 'k' } },
      /options\.rateLimit\.ipv6Subnet must be left out/,
    ],
    ['maxConnections negative', { maxConnections: -1 }, /options\.maxConnections/],
    ['maxQueue without maxConnections', { maxQueue: 5 }, /options\.maxQueue must be left out unless maxConnections/],
    ['queueTimeout not a number', { maxConnections: 1, queueTimeout: '1s' }, /options\.queueTimeout/],
    ['circuitBreaker.maxPending without maxConnections', { circuitBreaker: { maxPending: 1 } }, /options\.circuitBreaker\.maxPending/],
    [
      'circuitBreaker typo',
      { circuitBreaker: { maxRequest: 1 } },
      /unknown option "circuitBreaker\.maxRequest" — did you mean "circuitBreaker\.maxRequests"\?/,
    ],
    ['circuitBreaker.maxRetries negative', { circuitBreaker: { maxRetries: -1 } }, /options\.circuitBreaker\.maxRetries/],
    ['maxBodySize fractional', { maxBodySize: 1.5 }, /options\.maxBodySize/],
    ['maxHeaders negative', { maxHeaders: -1 }, /options\.maxHeaders/],
    ['maxHeaderSize a string', { maxHeaderSize: '8k' }, /options\.maxHeaderSize/],
    ['allowedMethods empty', { allowedMethods: [] }, /options\.allowedMethods/],
    ['allowedMethods with a space', { allowedMethods: ['GE T'] }, /options\.allowedMethods/],
    ['ipFilter prefix too long', { ipFilter: { allow: ['10.0.0.0/33'] } }, /options\.ipFilter\.allow .*"10\.0\.0\.0\/33"/],
    ['ipFilter empty prefix', { ipFilter: { deny: ['10.0.0.0/'] } }, /options\.ipFilter\.deny/],
    ['ipFilter not an address', { ipFilter: { deny: ['localhost'] } }, /options\.ipFilter\.deny/],
    ['ipFilter typo', { ipFilter: { allowed: ['10.0.0.0/8'] } }, /unknown option "ipFilter\.allowed" — did you mean "ipFilter\.allow"\?/],
    ['filter not a function', { filter: true }, /options\.filter/],
    ['pathRewrite relative prefix', { pathRewrite: { api: '/v2' } }, /options\.pathRewrite\["api"\]/],
    ['pathRewrite empty', { pathRewrite: {} }, /options\.pathRewrite/],
    ['pathRewrite with a query', { pathRewrite: { '/api': '/v2?x=1' } }, /options\.pathRewrite\["\/api"\]/],
    ['webSocketIdleTimeout negative', { webSocketIdleTimeout: -5 }, /options\.webSocketIdleTimeout/],
  ];
  for (const [name, options, message] of cases) {
    test(name, () => {
      assert.throws(
        () => loadBalance({ targets: ['http://127.0.0.1:1'], ...options } as LoadBalanceOptions),
        (err: unknown) => err instanceof TypeError && message.test(err.message),
      );
    });
  }

  test('stores and serverTimeouts check their own arguments', () => {
    assert.throws(() => memoryRateLimitStore({ maxKeys: 0 }), TypeError);
    assert.throws(() => redisRateLimitStore({} as never), /client must be an ioredis client/);
    assert.throws(() => serverTimeouts({} as http.Server), /serverTimeouts: server must be/);
    const server = http.createServer();
    assert.throws(
      () => serverTimeouts(server, { headersTimeout: 20_000, requestTimeout: 10_000 }),
      /serverTimeouts: options\.requestTimeout must be at least headersTimeout/,
    );
    assert.throws(() => serverTimeouts(server, { checkInterval: 0 }), /serverTimeouts: options\.checkInterval/);
    assert.throws(() => serverTimeouts(server, { idle: 5 } as never), /serverTimeouts: unknown option "idle"/);
  });

  test('serverTimeouts sets the server timeouts and returns the server', () => {
    const server = http.createServer();
    assert.equal(serverTimeouts(server), server);
    assert.equal(server.headersTimeout, 10_000);
    assert.equal(server.requestTimeout, 30_000);
    assert.equal(server.keepAliveTimeout, 5_000);
    assert.equal((server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval, 1_000);
    serverTimeouts(server, { headersTimeout: 2000, requestTimeout: 0 });
    assert.equal(server.headersTimeout, 2000);
    assert.equal(server.requestTimeout, 0);
  });
});

describe('allowedMethods', () => {
  test('other methods get 405 with Allow and never reach the backend', async () => {
    const t = await setup({ allowedMethods: ['GET', 'HEAD'] });
    try {
      assert.equal((await request(`${t.front.url}/x`)).status, 200);
      const refused = await request(`${t.front.url}/x`, { method: 'DELETE' });
      assert.equal(refused.status, 405);
      assert.equal(refused.headers.allow, 'GET, HEAD');
      assert.equal(refused.body, 'Method Not Allowed\n');
      const post = await request(`${t.front.url}/x`, { method: 'POST', body: 'data' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.connection, 'close', 'an unread body is not drained: the connection closes');
      assert.equal(t.up.hits, 1);
    } finally {
      await t.close();
    }
  });
});

describe('ipFilter', () => {
  test('deny and allow lists with CIDR ranges, on the socket peer', async () => {
    const denied = await setup({ ipFilter: { deny: ['127.0.0.0/8'] } });
    const outside = await setup({ ipFilter: { allow: ['10.0.0.0/8', '2001:db8::/32'] } });
    const inside = await setup({ ipFilter: { allow: ['10.0.0.0/8', '127.0.0.1'] } });
    try {
      const reply = await request(`${denied.front.url}/`);
      assert.equal(reply.status, 403);
      assert.equal(reply.body, 'Forbidden\n');
      assert.equal((await request(`${outside.front.url}/`)).status, 403);
      assert.equal((await request(`${inside.front.url}/`)).status, 200);
      assert.equal(denied.up.hits + outside.up.hits, 0);
    } finally {
      await closeAll(denied, outside, inside);
    }
  });

  test('the client address comes through trustProxy: IPv6 ranges, IPv4-mapped addresses, deny over allow', async () => {
    const t = await setup({ trustProxy: 'loopback', ipFilter: { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.6.6.0/24', '2001:db8:bad::/48'] } });
    const from = (ip: string) => request(`${t.front.url}/`, { headers: { 'x-forwarded-for': ip } });
    try {
      assert.equal((await from('10.1.2.3')).status, 200);
      assert.equal((await from('::ffff:10.1.2.3')).status, 200, 'IPv4-mapped IPv6 matches the IPv4 range');
      assert.equal((await from('2001:db8::5')).status, 200);
      assert.equal((await from('2001:db9::5')).status, 403);
      assert.equal((await from('10.6.6.6')).status, 403, 'deny wins over allow');
      assert.equal((await from('2001:db8:bad::1')).status, 403);
      assert.equal((await from('192.168.0.1')).status, 403);
      assert.equal((await from('not-an-ip')).status, 403, 'junk is not in any allow list');
      assert.equal(t.up.hits, 3);
    } finally {
      await t.close();
    }
  });
});

describe('filter hook', () => {
  test('sync and async verdicts: pass, false → 403, { status, message, headers }', async () => {
    const seen: string[] = [];
    const t = await setup({
      filter: (req) => {
        seen.push(req.url ?? '');
        if (req.url === '/deny') return false;
        if (req.url === '/auth') return { status: 401, message: 'token required', headers: { 'www-authenticate': 'Bearer' } };
        if (req.url === '/later') return delay(20).then(() => ({ status: 429, message: 'slow down' }));
        if (req.url === '/async-ok') return delay(20).then(() => true);
        return undefined;
      },
    });
    try {
      assert.equal((await request(`${t.front.url}/ok`)).status, 200);
      assert.equal((await request(`${t.front.url}/async-ok`)).status, 200);
      const denied = await request(`${t.front.url}/deny`);
      assert.equal(denied.status, 403);
      const auth = await request(`${t.front.url}/auth`);
      assert.equal(auth.status, 401);
      assert.equal(auth.body, 'token required\n');
      assert.equal(auth.headers['www-authenticate'], 'Bearer');
      const later = await request(`${t.front.url}/later`);
      assert.equal(later.status, 429);
      assert.equal(later.body, 'slow down\n');
      assert.equal(t.up.hits, 2);
      assert.deepEqual(seen, ['/ok', '/async-ok', '/deny', '/auth', '/later']);
    } finally {
      await t.close();
    }
  });

  test('a filter that throws, rejects, returns junk or injects CR/LF gets the client a 500; the process lives on', async () => {
    const t = await setup({
      filter: (req) => {
        if (req.url === '/throw') throw new Error('boom');
        if (req.url === '/reject') return Promise.reject(new Error('async boom'));
        if (req.url === '/junk') return { status: 200 };
        if (req.url === '/inject') return { status: 403, headers: { 'x-note': 'a\r\nset-cookie: stolen=1' } };
        return true;
      },
    });
    try {
      for (const path of ['/throw', '/reject', '/junk', '/inject']) {
        const reply = await request(`${t.front.url}${path}`);
        assert.equal(reply.status, 500, path);
        assert.equal(reply.headers['set-cookie'], undefined);
        assert.ok(!reply.body.includes('boom'), 'no error text leaks');
      }
      assert.equal((await request(`${t.front.url}/fine`)).status, 200);
      assert.equal(t.up.hits, 1);
    } finally {
      await t.close();
    }
  });

  test('a client that leaves while an async filter runs is neither forwarded nor answered', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let called = 0;
    const t = await setup({ filter: async () => (called++, await gate, true) });
    try {
      const req = http.get(`${t.front.url}/slow`, { agent: false });
      req.on('error', () => {});
      await waitFor(() => called === 1);
      req.destroy();
      await waitFor(() => t.front.sockets.size === 0);
      release();
      await delay(50);
      assert.equal(t.up.hits, 0);
      assert.equal(t.lb.stats().inFlight, 0);
    } finally {
      await t.close();
    }
  });
});

describe('pathRewrite', () => {
  test('maps prefixes (longest first) and keeps the query; paths outside every prefix get 404', async () => {
    const up = await backend('a');
    const lb = loadBalance({ targets: [up.url], pathRewrite: { '/api': '/internal/v2', '/api/admin/': '/admin-api', '/': '/public' } });
    const front = await listen(lb);
    const only = loadBalance({ targets: [up.url], pathRewrite: { '/api/': '/v1/' } });
    const strict = await listen(only);
    const urlOf = async (base: string, path: string) => {
      const reply = await request(`${base}${path}`);
      return reply.status === 200 ? (JSON.parse(reply.body) as { url: string }).url : reply.status;
    };
    try {
      // The backend echoes under /echo only, so rewrite targets are checked through a second rule set.
      assert.equal((await request(`${front.url}/api/users?id=1`)).status, 200);
      const echo = loadBalance({ targets: [up.url], pathRewrite: { '/api': '/echo/internal/v2', '/api/admin': '/echo/admin-api', '/': '/echo/public' } });
      const echoFront = await listen(echo);
      try {
        assert.equal(await urlOf(echoFront.url, '/api/users?id=1'), '/echo/internal/v2/users?id=1');
        assert.equal(await urlOf(echoFront.url, '/api'), '/echo/internal/v2');
        assert.equal(await urlOf(echoFront.url, '/api/admin/x'), '/echo/admin-api/x');
        assert.equal(await urlOf(echoFront.url, '/apiary'), '/echo/public/apiary', 'prefixes match whole segments');
        assert.equal(
          await urlOf(echoFront.url, '/api/a.b/c..d/%41?q=../x'),
          '/echo/internal/v2/a.b/c..d/%41?q=../x',
          'dots inside names and the query are fine',
        );
      } finally {
        await echo.close();
        await echoFront.close();
      }
      assert.equal((await request(`${strict.url}/other`)).status, 404);
      assert.equal((await request(`${strict.url}/api`)).status, 200);
      assert.equal(up.hits, 7);
    } finally {
      await lb.close();
      await only.close();
      await closeAll(front, strict, up);
    }
  });
});

describe('webSocketIdleTimeout', () => {
  test('a silent tunnel is closed on both sides; a talking one stays open', async () => {
    const upstreamClosed: number[] = [];
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => {
      ws.on('message', (data) => ws.send(data));
      ws.on('close', () => upstreamClosed.push(Date.now()));
    });
    const port = (wss.address() as { port: number }).port;
    const lb = loadBalance({ targets: [`http://127.0.0.1:${port}`], webSocketIdleTimeout: 300 });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    try {
      const silent = new WebSocket(`ws://127.0.0.1:${front.port}/`);
      const chatty = new WebSocket(`ws://127.0.0.1:${front.port}/`);
      await Promise.all([silent, chatty].map((ws) => new Promise((resolve) => ws.once('open', resolve))));
      const opened = Date.now();
      const silentClosed = new Promise<number>((resolve) => silent.once('close', () => resolve(Date.now())));
      for (let i = 0; i < 8; i++) {
        chatty.send(`ping ${i}`);
        await delay(100);
      }
      const closedAt = await silentClosed;
      assert.ok(closedAt - opened >= 250 && closedAt - opened < 2000, `silent tunnel closed after ${closedAt - opened} ms`);
      assert.equal(chatty.readyState, WebSocket.OPEN, 'the tunnel with traffic is still open after 800 ms');
      await waitFor(() => upstreamClosed.length >= 1);
      assert.equal(upstreamClosed.length, 1, 'the upstream side of the silent tunnel was closed too');
      chatty.close();
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await front.close();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});
