import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { leastConnections, loadBalance } from 'proxy-balancer';
import { closeAll, listen, rawRequest, waitFor, type TestServer } from './helpers.js';

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
