/**
 * WebSockets: `server.on('upgrade', lb.upgrade)` tunnels WebSocket handshakes through the same
 * pool and strategy as HTTP requests. The backends are `ws` WebSocketServers echoing every message
 * prefixed with their name; a client connects several times through the balancer.
 *
 *   npx tsx examples/websocket.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import { loadBalance } from 'proxy-balancer';
import WebSocket from 'ws';
import { closeServer, envPort, listen, onShutdown, printStats, startBackends } from './backends.js';

const demo = await startBackends(3, { websocket: true });
const lb = loadBalance({ targets: demo.urls });

const server = http.createServer(lb); // plain HTTP requests
server.on('upgrade', lb.upgrade); // WebSocket handshakes
const port = await listen(server, envPort('PORT', 8080));
const front = `ws://127.0.0.1:${port}`;
console.log(`front on http://127.0.0.1:${port} (HTTP and WebSocket)\n`);

/** Opens a WebSocket through the balancer, sends one message and resolves with the echo. */
function converse(socket: WebSocket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('message', (greeting) => {
      // The backend greets first ("backend-n: connected"); the next message is the echo.
      socket.once('message', (echo) => resolve(`${greeting.toString()} | ${echo.toString()}`));
      socket.send(message);
    });
  });
}

const sockets: WebSocket[] = [];
for (let i = 1; i <= 6; i++) {
  const socket = new WebSocket(`${front}/chat`);
  sockets.push(socket);
  console.log(`connection ${i}: ${await converse(socket, `hello #${i}`)}`);
}

console.log('\nWith the 6 tunnels still open, each counts as in flight:');
printStats(lb.stats());

await Promise.all(
  sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.close();
      }),
  ),
);

console.log(`\nTry (any WebSocket client), e.g.:
  npx wscat -c ws://localhost:${port}/chat
  node -e "const ws = new (require('ws'))('ws://localhost:${port}/'); ws.on('message', (m) => console.log(String(m))); ws.on('open', () => ws.send('hi'))"
Ctrl+C to stop.`);

onShutdown(async () => {
  await lb.close(); // also closes WebSocket tunnels still open
  await closeServer(server);
  await demo.close();
});
