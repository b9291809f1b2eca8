/**
 * The balancer under fuzz, alone in a child process: a crash ends this process, and the driver sees
 * it die (nothing here catches uncaught exceptions). argv[2] is the JSON list of target URLs.
 * Talks to the driver over the IPC channel: 'ready' with its port, then answers 'stats'.
 */
import http from 'node:http';
import { type AddressInfo, Socket } from 'node:net';
import { httpHealthCheck, loadBalance, responseCache } from 'proxy-balancer';

export interface ChildStats {
  type: 'stats';
  id: number;
  inFlight: number;
  /** process.getActiveResourcesInfo(), counted by kind. */
  resources: Record<string, number>;
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  /** Open client connections of the front server. */
  clientSockets: number;
  /** Open TCP sockets described (see openSockets). */
  sockets: string[];
}

export const FUZZ_PROXY_TIMEOUT = 500;

const targets = JSON.parse(process.argv[2]!) as string[];
const lb = loadBalance({
  targets,
  cache: responseCache({ maxSize: 8 * 1024 * 1024, maxEntrySize: 256 * 1024 }),
  healthCheck: httpHealthCheck({ path: '/health', interval: 500, timeout: 400 }),
  outlierDetection: { baseEjectionTime: 300, maxEjectionTime: 1000 },
  proxyTimeout: FUZZ_PROXY_TIMEOUT,
  // Idle upstream sockets go after 1 s, so a quiet balancer holds none.
  agentOptions: { timeout: 1000 },
});

let clientSockets = 0;
const server = http.createServer(lb);
server.on('connection', (socket) => {
  clientSockets++;
  socket.on('close', () => clientSockets--);
});

function stats(id: number): ChildStats {
  const resources: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) resources[kind] = (resources[kind] ?? 0) + 1;
  const memory = process.memoryUsage();
  return {
    type: 'stats',
    id,
    inFlight: lb.stats().inFlight,
    resources,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    arrayBuffers: memory.arrayBuffers,
    clientSockets,
    sockets: openSockets(),
  };
}

/** Who the open TCP sockets belong to, for a leak report: `client` (accepted by the front) or `upstream <path>`. */
function openSockets(): string[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles
    .filter((h): h is Socket => h instanceof Socket)
    .map((socket) => {
      const side = socket.localPort === port ? 'client' : 'upstream';
      const message = (socket as Socket & { _httpMessage?: { path?: string; method?: string } })._httpMessage;
      return `${side} ${socket.remotePort} ${message ? `${message.method} ${message.path}` : 'idle'} ${socket.readyState}${socket.destroyed ? ' destroyed' : ''}`;
    });
}

process.on('message', (message: { type: string; id: number }) => {
  if (message.type === 'stats') process.send!(stats(message.id));
  if (message.type === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send!(stats(message.id));
  }
  if (message.type === 'close') {
    void lb.close().then(() => server.close(() => process.send!({ type: 'closed', id: message.id })));
    server.closeAllConnections();
  }
});

await lb.firstHealthCheck();
let port = 0;
server.listen(0, '127.0.0.1', () => {
  port = (server.address() as AddressInfo).port;
  process.send!({ type: 'ready', port });
});
