import http, { type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { loadBalance } from 'proxy-balancer';
import { WebSocket, WebSocketServer } from 'ws';

/** A real HTTP server on 127.0.0.1 (or `host`) with an ephemeral port that counts requests and open sockets. */
export interface TestServer {
  server: Server;
  url: string;
  port: number;
  hits: number;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

export async function listen(handler: RequestListener, server: Server = http.createServer(), host = '127.0.0.1'): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const state: TestServer = {
    server,
    url: '',
    port: 0,
    hits: 0,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('request', (req, res) => {
    state.hits++;
    handler(req, res);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://${host.includes(':') ? `[${host}]` : host}:${state.port}`;
  return state;
}

/** A backend answering with its name (and echoing what it saw as JSON under /echo). */
export function backend(name: string): Promise<TestServer> {
  return listen((req, res) => {
    if (req.url?.startsWith('/echo')) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
      });
      return;
    }
    res.setHeader('x-backend', name);
    res.end(name);
  });
}

export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One request with a fresh connection (agent: false), so no test leaves sockets behind. */
export function request(url: string, options: http.RequestOptions & { body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export async function closeAll(...servers: Array<{ close(): Promise<void> } | undefined>): Promise<void> {
  await Promise.all(servers.map((s) => s?.close()));
}

/** Sends raw bytes on a fresh socket and collects everything until the server closes or `idleMs` passes. */
export function rawRequest(port: number, data: string, idleMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setTimeout(idleMs, () => socket.destroy());
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.write(data);
  });
}

/** A self-signed certificate for localhost/127.0.0.1, made with the openssl CLI. */
export { generateCertificate as selfSignedCert } from '../examples/certificate.js';

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 5 ms until it holds or `ms` pass (then the caller's assertion reports). */
export async function waitFor(condition: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await delay(5);
}

/** A port nothing listens on: bound, read, released. */
export async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * What this project's cache did, read from its Cache-Status member (RFC 9211) and said in the
 * X-Cache words many tests were written in: HIT (served from storage without going forward, or
 * collapsed into a response another request stored), STALE (served past its freshness: a hit with
 * a negative ttl, or an error it stood in for), REVALIDATED (fwd-status=304), BYPASS (fwd=bypass
 * or method), MISS (any other fwd); 'none' without our member.
 */
export function cacheOutcome(headers: http.IncomingHttpHeaders | Record<string, unknown>, name = 'proxy-balancer'): string {
  const field = headers['cache-status'];
  if (field === undefined) return 'none';
  const members = String(field).split(/,\s*(?=[A-Za-z*"])/);
  const ours = members.filter((m) => m.split(';')[0]!.trim() === name).at(-1);
  if (ours === undefined) return 'none';
  const params = new Map(
    ours
      .split(';')
      .slice(1)
      .map((p) => {
        const [key, value = '?1'] = p.trim().split('=');
        return [key!, value] as const;
      }),
  );
  if (params.has('hit')) return Number(params.get('ttl') ?? 0) < 0 ? 'STALE' : 'HIT';
  if (params.get('fwd-status') === '304') return 'REVALIDATED';
  if (params.has('fwd-status')) return 'STALE';
  if (params.get('collapsed') === '?1') return 'HIT';
  const fwd = params.get('fwd');
  if (fwd === 'bypass' || fwd === 'method') return 'BYPASS';
  return fwd === undefined ? 'none' : 'MISS';
}

/** The headers a WebSocket backend behind a fresh balancer receives for a handshake sent with `headers`. */
export async function handshakeHeadersSeen(headers: Record<string, string>): Promise<IncomingHttpHeaders> {
  const wss = new WebSocketServer({ noServer: true });
  let seen: IncomingHttpHeaders | undefined;
  const wsBackend = await listen((_req, res) => res.end());
  wsBackend.server.on('upgrade', (req, socket, head) => {
    seen = req.headers;
    wss.handleUpgrade(req, socket, head, (ws) => ws.close());
  });
  const lb = loadBalance({ targets: [wsBackend.url] });
  const front = await listen(lb);
  front.server.on('upgrade', lb.upgrade);
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${front.port}/chat`, { headers });
    await new Promise<void>((resolve, reject) => {
      ws.once('close', () => resolve());
      ws.once('error', reject);
    });
    if (seen === undefined) throw new Error('the handshake never reached the backend');
    return seen;
  } finally {
    await lb.close();
    wss.close();
    await closeAll(front, wsBackend);
  }
}
