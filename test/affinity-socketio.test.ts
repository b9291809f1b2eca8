import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { Server } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import { loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { closeAll, listen, type TestServer } from './helpers.js';

/** A socket.io backend: greets each connection with its name, acknowledges `echo` with `name:message`. */
async function socketIoBackend(name: string): Promise<TestServer & { transports: string[]; badRequests: number }> {
  const server = http.createServer();
  const ioServer = new Server(server);
  const backend = Object.assign(await listen(() => {}, server), { transports: [] as string[], badRequests: 0 });
  // socket.io answers a request for a session it does not know with 400: count those.
  ioServer.engine.on('connection_error', () => backend.badRequests++);
  ioServer.on('connection', (socket) => {
    socket.emit('hello', name);
    socket.on('echo', (message: string, ack: (reply: string) => void) => ack(`${name}:${message}`));
    socket.conn.once('upgrade', (transport: { name: string }) => backend.transports.push(transport.name));
  });
  const close = backend.close;
  backend.close = () => (ioServer.close(), close());
  return backend;
}

async function front(options: Omit<LoadBalanceOptions, 'targets'>, targets: string[]) {
  const lb = loadBalance({ targets, ...options });
  const server = await listen(lb);
  server.server.on('upgrade', lb.upgrade);
  return { lb, server };
}

/** Connects with long polling first, then the WebSocket upgrade; cookies kept as a browser would. */
function connect(url: string): Socket {
  return io(url, { transports: ['polling', 'websocket'], withCredentials: true, reconnection: false, forceNew: true, timeout: 3000 });
}

describe('socket.io behind the balancer', () => {
  test('without affinity, the long-polling session breaks on the other backend', async () => {
    const backends = await Promise.all(['a', 'b'].map(socketIoBackend));
    const { lb, server } = await front(
      {},
      backends.map((b) => b.url),
    );
    const socket = connect(server.url);
    try {
      const outcome = await new Promise<string>((resolve) => {
        socket.once('connect', () => resolve('connected'));
        socket.once('connect_error', (err) => resolve(`connect_error: ${err.message}`));
        socket.once('disconnect', (reason) => resolve(`disconnect: ${reason}`));
      });
      assert.notEqual(outcome, 'connected', 'round robin sends the second poll to the backend that never saw the handshake');
      assert.ok(backends.reduce((n, b) => n + b.badRequests, 0) > 0, 'a backend refused an unknown session id');
    } finally {
      socket.close();
      await closeAll(...backends);
      await lb.close();
      await server.close();
    }
  });

  test('with affinity, the handshake, the polls and the WebSocket upgrade stay on one backend', async () => {
    const backends = await Promise.all(['a', 'b'].map(socketIoBackend));
    const { lb, server } = await front(
      { affinity: { cookie: 'lb', secret: 'socket.io sessions need affinity' } },
      backends.map((b) => b.url),
    );
    const sockets: Socket[] = [];
    try {
      const names: string[] = [];
      for (let i = 0; i < 4; i++) {
        const socket = connect(server.url);
        sockets.push(socket);
        const greeting = await new Promise<string>((resolve, reject) => {
          socket.once('hello', resolve);
          socket.once('connect_error', reject);
        });
        // Wait for the upgrade to the WebSocket transport.
        if (socket.io.engine.transport.name !== 'websocket') await new Promise((resolve) => socket.io.engine.once('upgrade', resolve));
        for (let j = 0; j < 5; j++) assert.equal(await socket.emitWithAck('echo', `m${j}`), `${greeting}:m${j}`);
        names.push(greeting);
      }
      assert.deepEqual(names.sort(), ['a', 'a', 'b', 'b'], 'new clients are still spread by the strategy');
      assert.deepEqual(
        backends.map((b) => b.transports),
        [
          ['websocket', 'websocket'],
          ['websocket', 'websocket'],
        ],
        'every session upgraded on the backend that made it',
      );
      assert.equal(
        backends.reduce((n, b) => n + b.badRequests, 0),
        0,
        'no backend saw a session it did not know',
      );
      const affinity = lb.stats().affinity!;
      assert.equal(affinity.placed, 4, 'one placement per client (its handshake)');
      assert.ok(affinity.sticky >= 8, `polls and upgrades were sticky: ${JSON.stringify(affinity)}`);
      assert.equal(affinity.replaced, 0);
    } finally {
      for (const socket of sockets) socket.close();
      await closeAll(...backends);
      await lb.close();
      await server.close();
    }
  });
});
