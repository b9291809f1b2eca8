/**
 * Shared helpers for the examples: demo backends, listening with a port fallback, a tiny HTTP
 * client, and a SIGINT handler that shuts everything down.
 *
 * Not part of the library: the examples import `proxy-balancer` for that.
 */
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { BalancerStats } from 'proxy-balancer';
import { WebSocketServer } from 'ws';

export interface DemoBackend {
  name: string;
  url: string;
  port: number;
  server: Server;
  /** Simulates a crash: stops listening and cuts every open connection. */
  stop(): Promise<void>;
  /** Listens again on the same port after `stop()`. */
  start(): Promise<void>;
}

export interface BackendOptions {
  /** Preferred first port; backend i gets firstPort + i. Default: env BACKEND_PORT, else 3001. 0 = ephemeral. */
  firstPort?: number;
  /** Names of the backends; default 'backend-1', 'backend-2'... */
  names?: string[];
  /** Milliseconds each backend waits before answering (one number for all, or one per backend). */
  delayMs?: number | number[];
  /** Also report the forwarding headers the backend received (X-Forwarded-*, Forwarded, Host). */
  showForwarding?: boolean;
  /** Also accept WebSocket connections and echo every message prefixed with the backend's name. */
  websocket?: boolean;
}

export interface DemoBackends {
  backends: DemoBackend[];
  /** The backends' URLs, ready to pass as `targets`. */
  urls: string[];
  close(): Promise<void>;
}

/**
 * Starts `count` HTTP backends on 127.0.0.1. Each answers every request with JSON
 * `{ backend, path }` and an `x-backend` header naming itself.
 */
export async function startBackends(count: number, options: BackendOptions = {}): Promise<DemoBackends> {
  const firstPort = options.firstPort ?? envPort('BACKEND_PORT', 3001);
  const backends: DemoBackend[] = [];
  const closers: Array<() => Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    const name = options.names?.[i] ?? `backend-${i + 1}`;
    const delay = Array.isArray(options.delayMs) ? (options.delayMs[i] ?? 0) : (options.delayMs ?? 0);
    const server = http.createServer((req, res) => {
      const answer = (): void => {
        const body: Record<string, unknown> = { backend: name, path: req.url };
        if (options.showForwarding) body.received = forwardingHeaders(req);
        res.setHeader('content-type', 'application/json');
        res.setHeader('x-backend', name);
        res.end(`${JSON.stringify(body)}\n`);
      };
      // Drain any request body first, then answer.
      req.resume();
      req.on('end', () => (delay > 0 ? setTimeout(answer, delay) : answer()));
    });
    let wss: WebSocketServer | undefined;
    if (options.websocket) {
      wss = new WebSocketServer({ server });
      wss.on('connection', (ws) => {
        ws.send(`${name}: connected`);
        ws.on('message', (data) => ws.send(`${name}: ${data.toString()}`));
      });
    }
    const port = await listen(server, firstPort === 0 ? 0 : firstPort + i, '127.0.0.1');
    backends.push({
      name,
      port,
      url: `http://127.0.0.1:${port}`,
      server,
      stop: () => {
        for (const client of wss?.clients ?? []) client.terminate();
        return closeServer(server);
      },
      start: async () => {
        if (!server.listening) await listenOnce(server, port, '127.0.0.1');
      },
    });
    closers.push(() => closeServer(server, wss));
  }
  return {
    backends,
    urls: backends.map((b) => b.url),
    close: async () => {
      await Promise.all(closers.map((close) => close()));
    },
  };
}

function forwardingHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const pick = (name: string): string | undefined => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  return {
    host: pick('host'),
    'x-forwarded-for': pick('x-forwarded-for'),
    'x-forwarded-proto': pick('x-forwarded-proto'),
    'x-forwarded-host': pick('x-forwarded-host'),
    'x-forwarded-port': pick('x-forwarded-port'),
    forwarded: pick('forwarded'),
  };
}

/** Reads a port from the environment; `fallback` when unset or invalid. */
export function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.warn(`Ignoring ${name}=${JSON.stringify(raw)} (not a port number); using ${fallback}.`);
    return fallback;
  }
  return port;
}

/**
 * Listens on `port`; if it is taken, says so and listens on an ephemeral port instead.
 * Returns the port actually used.
 */
export async function listen(server: NetServer, port: number, host = '127.0.0.1'): Promise<number> {
  trackConnections(server);
  try {
    await listenOnce(server, port, host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (port === 0 || (code !== 'EADDRINUSE' && code !== 'EACCES')) throw err;
    await listenOnce(server, 0, host);
    const actual = (server.address() as AddressInfo).port;
    console.log(`Port ${port} is not available (${code}); listening on ephemeral port ${actual} instead.`);
  }
  return (server.address() as AddressInfo).port;
}

function listenOnce(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

const kSockets = Symbol('sockets');
type Tracked = NetServer & { [kSockets]?: Set<Socket> };

/** Remembers open connections (HTTP keep-alive and upgraded ones) so `closeServer` can end them. */
function trackConnections(server: Tracked): void {
  if (server[kSockets] !== undefined) return;
  const sockets = new Set<Socket>();
  server[kSockets] = sockets;
  const add = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  server.on('connection', add);
  server.on('secureConnection', add);
}

/** Stops listening and destroys every remaining connection, including WebSocket ones. */
export function closeServer(server: NetServer, wss?: WebSocketServer): Promise<void> {
  return new Promise((resolve) => {
    if (wss !== undefined) {
      for (const client of wss.clients) client.terminate();
      wss.close();
    }
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    for (const socket of (server as Tracked)[kSockets] ?? []) socket.destroy();
  });
}

export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** GET (or another method) with a plain node:http request; resolves with status, headers and body. */
export function request(url: string, options: http.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends `total` GET requests to `url` (`concurrency` at a time, over one keep-alive agent) and
 * counts the answers per `x-backend` header. Answers without the header count under their status.
 */
export async function burst(url: string, total: number, concurrency = 10): Promise<Map<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const counts = new Map<string, number>();
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < total) {
      const n = sent++;
      const separator = url.includes('?') ? '&' : '?';
      const reply = await request(`${url}${separator}n=${n}`, { agent });
      const header = reply.headers['x-backend'];
      const key = typeof header === 'string' ? header : `HTTP ${reply.status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  } finally {
    agent.destroy();
  }
  return counts;
}

/** Prints a count per backend as a bar chart, in `order` first, then anything else seen. */
export function printDistribution(counts: Map<string, number>, order: string[] = []): void {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const names = [...new Set([...order, ...counts.keys()])];
  const width = Math.max(...names.map((n) => n.length));
  const most = Math.max(1, ...counts.values());
  const scale = most > 50 ? 50 / most : 1; // bars at most 50 characters wide
  for (const name of names) {
    const count = counts.get(name) ?? 0;
    const share = total === 0 ? 0 : Math.round((count / total) * 100);
    console.log(`  ${name.padEnd(width)}  ${String(count).padStart(4)}  ${String(share).padStart(3)}%  ${'#'.repeat(Math.round(count * scale))}`);
  }
}

/** Prints `lb.stats()` as a table (health columns only when they say something). */
export function printStats(stats: BalancerStats): void {
  console.log(
    `  strategy=${stats.strategy} ready=${stats.ready} inFlight=${stats.inFlight} ` +
      `unavailable(503)=${stats.unavailable} retries=${stats.retries}${stats.panic ? ' PANIC' : ''}`,
  );
  console.table(
    stats.targets.map((t) => {
      const row: Record<string, unknown> = {
        url: t.url,
        weight: t.effectiveWeight === t.weight ? t.weight : `${round(t.effectiveWeight)}/${t.weight}`,
        state: t.state,
        inFlight: t.inFlight,
        total: t.total,
        errors: t.errors,
        'latency ms': t.latency,
      };
      if (t.lastCheck !== undefined) row['last check'] = t.lastCheck.detail;
      if (t.ejections !== undefined && t.ejections > 0) row.ejections = t.ejections;
      return row;
    }),
  );
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/**
 * Runs `shutdown` on the first SIGINT or SIGTERM, then lets the process exit on its own.
 * A second signal, or a shutdown that hangs for 5 s, forces the exit.
 */
export function onShutdown(shutdown: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.log(`\n${signal} again: exiting now.`);
      process.exit(1);
    }
    stopping = true;
    console.log(`\n${signal}: shutting down...`);
    const force = setTimeout(() => {
      console.error('Shutdown took longer than 5 s; exiting.');
      process.exit(1);
    }, 5000);
    force.unref();
    shutdown().then(
      () => {
        console.log('Closed cleanly.');
        process.removeListener('SIGINT', handler);
        process.removeListener('SIGTERM', handler);
      },
      (err: unknown) => {
        console.error('Shutdown failed:', err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
