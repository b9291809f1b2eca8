/**
 * Session affinity for socket.io: a socket.io session starts with HTTP long polling (a handshake,
 * then more polls carrying its session id) and then upgrades to a WebSocket. Every one of those
 * requests must reach the backend that made the session; another backend answers 400 "Session ID
 * unknown". `affinity` cookies the handshake's response with the backend's HMAC, and the polls and
 * the upgrade carry that cookie back, so they stay on one backend while new clients are still
 * spread by the strategy.
 *
 *   npx tsx examples/affinity-socketio.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 *
 * Then open http://localhost:8080/ in two browsers: each page shows the backend it is on.
 */
import http from 'node:http';
import { loadBalance } from 'proxy-balancer';
import { Server } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import { closeServer, envPort, listen, onShutdown } from './backends.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>socket.io behind proxy-balancer</title>
<p id="out">connecting&hellip;</p>
<script src="/socket.io/socket.io.js"></script>
<script>
  const socket = io({ transports: ['polling', 'websocket'] });
  const out = document.getElementById('out');
  socket.on('hello', (name) => (out.textContent = 'connected to ' + name + ' over ' + socket.io.engine.transport.name));
  socket.io.engine.on('upgrade', (t) => (out.textContent += ', upgraded to ' + t.name));
</script>`;

/** A socket.io backend: greets each session with its name and acknowledges `echo` messages. */
async function socketIoBackend(name: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(PAGE);
  });
  const ioServer = new Server(server);
  ioServer.engine.on('connection_error', (err: { message: string }) => console.log(`  ${name}: refused a request: ${err.message}`));
  ioServer.on('connection', (socket) => {
    socket.emit('hello', name);
    socket.on('echo', (message: string, ack: (reply: string) => void) => ack(`${name} echoes ${message}`));
  });
  const actual = await listen(server, port);
  return {
    url: `http://127.0.0.1:${actual}`,
    close: async () => {
      ioServer.close();
      await closeServer(server);
    },
  };
}

const firstPort = envPort('BACKEND_PORT', 3001);
const backends = await Promise.all(['backend-1', 'backend-2'].map((name, i) => socketIoBackend(name, firstPort === 0 ? 0 : firstPort + i)));
const lb = loadBalance({
  targets: backends.map((b) => b.url),
  // In production: a secret of your own (at least 16 bytes), the same on every balancer instance.
  affinity: { cookie: 'lb', secret: process.env.AFFINITY_SECRET ?? 'demo secret, change me' },
});
const front = http.createServer(lb);
front.on('upgrade', lb.upgrade); // the WebSocket upgrade, routed by the same cookie
const port = await listen(front, envPort('PORT', 8080));
const url = `http://127.0.0.1:${port}`;
console.log(`front on ${url} (socket.io over HTTP long polling and WebSocket)\n`);

/** One socket.io client session: long polling first, then the upgrade. `withCredentials` gives it a cookie jar in Node. */
async function session(i: number): Promise<Socket> {
  const socket = io(url, { transports: ['polling', 'websocket'], withCredentials: true, reconnection: false, forceNew: true });
  const name = await new Promise<string>((resolve, reject) => {
    socket.once('hello', resolve);
    socket.once('connect_error', reject);
  });
  const first = socket.io.engine.transport.name;
  if (first !== 'websocket') await new Promise((resolve) => socket.io.engine.once('upgrade', resolve));
  const echo = await socket.emitWithAck('echo', `message #${i}`);
  console.log(`client ${i}: handshake on ${name} over ${first}, upgraded to ${socket.io.engine.transport.name}; ${echo}`);
  return socket;
}

const sockets: Socket[] = [];
for (let i = 1; i <= 4; i++) sockets.push(await session(i));
console.log('\naffinity:', lb.stats().affinity, '(placed: handshakes; sticky: polls and upgrades that followed their cookie)');
for (const socket of sockets) socket.close();

console.log(`\nWithout affinity, the second poll of a session goes to the other backend, which refuses it
(400 "Session ID unknown"). Open ${url}/ in a browser to see a session land and stay on one backend.
Ctrl+C to stop.`);

onShutdown(async () => {
  await Promise.all(backends.map((b) => b.close()));
  await lb.close();
  await closeServer(front);
});
