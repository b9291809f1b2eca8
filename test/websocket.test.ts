import assert from 'node:assert/strict';
import http, { type RequestListener } from 'node:http';
import { describe, test } from 'node:test';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import { WebSocket, WebSocketServer } from 'ws';
import { leastConnections, loadBalance, type LoadBalanceOptions, type LoadBalancer } from 'proxy-balancer';
import { front } from './abuse/harness.js';
import { closeAll, listen, rawRequest, request, waitFor, type TestServer } from './helpers.js';

/** A ws echo backend that prefixes replies with its name. */
async function wsBackend(name: string): Promise<TestServer & { wss: WebSocketServer }> {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data) => ws.send(`${name}:${data}:${req.headers['x-forwarded-for']}`));
  });
  const server = await listen((_req, res) => res.end(name));
  server.server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  return Object.assign(server, { wss });
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function roundTrip(ws: WebSocket, message: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (data) => resolve(String(data)));
    ws.send(message);
  });
}

describe('WebSocket upgrades', () => {
  test('echo through the balancer, spread by the same strategy, counted as in-flight', async () => {
    const backends = await Promise.all(['a', 'b'].map(wsBackend));
    const lb = loadBalance({ targets: backends.map((b) => b.url), strategy: leastConnections() });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    const sockets: WebSocket[] = [];
    try {
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const ws = await open(`ws://127.0.0.1:${front.port}/chat`);
        sockets.push(ws);
        const reply = await roundTrip(ws, `hi${i}`);
        assert.match(reply, new RegExp(`^[ab]:hi${i}:127\\.0\\.0\\.1$`));
        names.add(reply[0]!);
      }
      assert.deepEqual([...names].sort(), ['a', 'b'], 'tunnels spread over both backends');
      assert.equal(lb.stats().inFlight, 4, 'open tunnels count as in-flight');
      assert.deepEqual(
        lb.stats().targets.map((t) => t.inFlight),
        [2, 2],
      );
      for (const ws of sockets) ws.close();
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
      await waitFor(() => backends.every((b) => b.wss.clients.size === 0));
      assert.ok(
        backends.every((b) => b.wss.clients.size === 0),
        'upstream tunnel ends closed',
      );
    } finally {
      for (const ws of sockets) ws.terminate();
      await lb.close();
      await closeAll(front, ...backends);
    }
  });

  test('a backend closing the tunnel closes the client side', async () => {
    const b = await wsBackend('a');
    const lb = loadBalance({ targets: [b.url] });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    try {
      const ws = await open(`ws://127.0.0.1:${front.port}/`);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      for (const client of b.wss.clients) client.close(4001, 'bye');
      assert.equal(await closed, 4001);
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('lb.close() tears down open tunnels', async () => {
    const b = await wsBackend('a');
    const lb = loadBalance({ targets: [b.url] });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    try {
      const ws = await open(`ws://127.0.0.1:${front.port}/`);
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      await lb.close();
      await closed;
      await waitFor(() => b.wss.clients.size === 0);
      assert.equal(b.wss.clients.size, 0);
    } finally {
      await closeAll(front, b);
    }
  });

  test('an unreachable backend answers the handshake with 502; an empty pool with 503', async () => {
    const gone = await listen(() => {});
    const url = gone.url;
    await gone.close();
    const lb = loadBalance({ targets: [url] });
    const empty = loadBalance({ targets: [], dynamic: true });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    const emptyFront = await listen(empty);
    emptyFront.server.on('upgrade', empty.upgrade);
    const handshake =
      'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    try {
      assert.match(await rawRequest(front.port, handshake), /^HTTP\/1\.1 502 Bad Gateway\r\n/);
      assert.match(await rawRequest(emptyFront.port, handshake), /^HTTP\/1\.1 503 Service Unavailable\r\nRetry-After: 1\r\n/);
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
      assert.equal(lb.stats().targets[0]!.errors, 1);
    } finally {
      await lb.close();
      await empty.close();
      await closeAll(front, emptyFront);
    }
  });

  test('a backend refusing the upgrade has its answer relayed', async () => {
    const plain = await listen((_req, res) => {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('no websockets here');
    });
    const lb = loadBalance({ targets: [plain.url] });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    try {
      const status = await new Promise<number>((resolve) => {
        const req = http.request({ port: front.port, host: '127.0.0.1', headers: { connection: 'upgrade', upgrade: 'websocket' }, agent: false });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(-1));
        req.end();
      });
      assert.equal(status, 403);
    } finally {
      await lb.close();
      await closeAll(front, plain);
    }
  });
});

/** A ws backend telling each client the path and X-Forwarded-Prefix its handshake arrived with. */
async function pathBackend(): Promise<TestServer & { wss: WebSocketServer; upgrades: string[] }> {
  const wss = new WebSocketServer({ noServer: true });
  const upgrades: string[] = [];
  wss.on('connection', (ws, req) => ws.send(`${req.url} ${req.headers['x-forwarded-prefix'] ?? '-'}`));
  const server = await listen((_req, res) => res.end('http'));
  server.server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.url ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  return Object.assign(server, { wss, upgrades });
}

/** The first message of a WebSocket opened at `url`: what the path backend saw. */
function seenBy(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', (data) => {
      resolve(String(data));
      ws.close();
    });
    ws.once('error', reject);
  });
}

const handshakeTo = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

describe('WebSocket upgrades under a mount path', () => {
  const apps: Record<string, (lb: LoadBalancer) => RequestListener> = {
    'Express 4': (lb) => express4().use('/api', lb) as unknown as RequestListener,
    'Express 5': (lb) => express5().use('/api', lb) as unknown as RequestListener,
    Connect: (lb) => connect().use('/api', lb) as unknown as RequestListener,
  };

  async function mounted(build: (lb: LoadBalancer) => RequestListener, options: Omit<LoadBalanceOptions, 'targets'> = {}) {
    const backend = await pathBackend();
    const lb = loadBalance({ targets: [backend.url], ...options });
    // The app itself as the server's request listener, as app.listen() and http.createServer(app) make it.
    const server = await front(build(lb));
    server.server.on('upgrade', lb.upgrade);
    const front_ = { ...server, url: `http://127.0.0.1:${server.port}` };
    return {
      backend,
      front: front_,
      lb,
      ws: (path: string) => seenBy(`ws://127.0.0.1:${server.port}${path}`),
      raw: (path: string) => rawRequest(server.port, handshakeTo(path)),
      async close() {
        await lb.close();
        await closeAll(server, backend);
      },
    };
  }

  for (const [name, build] of Object.entries(apps)) {
    test(`${name}: learned from HTTP, the mount path is stripped as for HTTP; upgrades outside it get 404, no tunnel`, async () => {
      const t = await mounted(build);
      try {
        assert.equal((await request(`${t.front.url}/api/x`)).body, 'http');
        assert.equal(await t.ws('/api/chat?room=1'), '/chat?room=1 /api');
        assert.equal(await t.ws('/api'), '/ /api');
        assert.match(await t.raw('/not-api/x'), /^HTTP\/1\.1 404 Not Found\r\n/);
        assert.match(await t.raw('/apiary'), /^HTTP\/1\.1 404 Not Found\r\n/, 'whole segments only');
        assert.deepEqual(t.backend.upgrades, ['/chat?room=1', '/']);
      } finally {
        await t.close();
      }
    });
  }

  test('mountPath names the mount before any HTTP request; pathRewrite applies to upgrades as to HTTP', async () => {
    const t = await mounted(apps['Express 5']!, { mountPath: '/api', pathRewrite: { '^/api': '/ws' } });
    try {
      assert.equal(await t.ws('/api/chat'), '/ws/chat /api');
      assert.match(await t.raw('/chat'), /^HTTP\/1\.1 404 Not Found\r\n/);
      assert.deepEqual(t.backend.upgrades, ['/ws/chat']);
    } finally {
      await t.close();
    }
  });

  test('one balancer at two mount paths: each upgrade loses its own', async () => {
    const t = await mounted((lb) => express5().use('/api', lb).use('/v2/api', lb) as unknown as RequestListener);
    try {
      await request(`${t.front.url}/api/x`);
      await request(`${t.front.url}/v2/api/x`);
      assert.equal(await t.ws('/api/chat'), '/chat /api');
      assert.equal(await t.ws('/v2/api/chat'), '/chat /v2/api');
      assert.match(await t.raw('/v2/chat'), /^HTTP\/1\.1 404 /);
    } finally {
      await t.close();
    }
  });

  test('before any HTTP request and without mountPath, a mounted balancer tunnels nothing and says why', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const t = await mounted(apps['Express 4']!);
    try {
      assert.match(await t.raw('/api/chat'), /^HTTP\/1\.1 404 /);
      assert.deepEqual(t.backend.upgrades, []);
      await new Promise((r) => setTimeout(r, 5));
      assert.match(warnings.join('\n'), /before any HTTP request showed where the balancer is mounted.*mountPath/);
      await request(`${t.front.url}/api/x`);
      assert.equal(await t.ws('/api/chat'), '/chat /api', 'learned from the first HTTP request');
    } finally {
      process.off('warning', onWarning);
      await t.close();
    }
  });

  test("upgrades outside the mount are left to the server's other upgrade listeners (a ws server of the app)", async () => {
    const t = await mounted(apps['Express 5']!, { mountPath: '/api' });
    const own = new WebSocketServer({ noServer: true });
    own.on('connection', (ws) => ws.send('app socket'));
    t.front.server.on('upgrade', (req, socket, head) => {
      if (req.url === '/socket') own.handleUpgrade(req, socket, head, (ws) => own.emit('connection', ws, req));
    });
    try {
      assert.equal(await t.ws('/socket'), 'app socket');
      assert.equal(await t.ws('/api/chat'), '/chat /api');
      assert.deepEqual(t.backend.upgrades, ['/chat']);
    } finally {
      for (const ws of own.clients) ws.terminate();
      own.close();
      await t.close();
    }
  });

  test('mountPath must be absolute paths: a TypeError naming it otherwise', () => {
    const target = ['http://127.0.0.1:1'];
    assert.throws(() => loadBalance({ targets: target, mountPath: 'api' }), /options\.mountPath must be an absolute path/);
    assert.throws(() => loadBalance({ targets: target, mountPath: ['/api', '/:tenant'] }), /options\.mountPath\[1\] must be an absolute path/);
    assert.throws(() => loadBalance({ targets: target, mountPath: [] }), /options\.mountPath must be a path/);
  });
});
