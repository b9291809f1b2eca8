import http, { type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { delay } from '../helpers.js';

/** What one request looked like on arrival at a counting backend. */
export interface Arrival {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** Body bytes received. */
  bytes: number;
  body: string;
  /** Whether the whole body arrived (false for a request aborted mid-body). */
  complete: boolean;
}

/**
 * A backend that counts everything reaching it: connections ever accepted, sockets open now,
 * requests and their bodies. `handler` answers (default: 200 with 'ok' once the body is in).
 */
export interface CountingBackend {
  url: string;
  port: number;
  server: Server;
  connections: number;
  open: Set<Socket>;
  arrivals: Arrival[];
  close(): Promise<void>;
}

export async function countingBackend(handler?: (req: http.IncomingMessage, res: http.ServerResponse, arrival: Arrival) => void): Promise<CountingBackend> {
  const server = http.createServer();
  const state: CountingBackend = {
    url: '',
    port: 0,
    server,
    connections: 0,
    open: new Set(),
    arrivals: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of state.open) socket.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: Socket) => {
    state.connections++;
    state.open.add(socket);
    socket.on('close', () => state.open.delete(socket));
  });
  server.on('request', (req, res) => {
    const arrival: Arrival = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bytes: 0,
      body: '',
      complete: false,
    };
    state.arrivals.push(arrival);
    req.on('data', (chunk: Buffer) => {
      arrival.bytes += chunk.length;
      if (arrival.body.length < 4096) arrival.body += chunk.toString('latin1');
    });
    req.on('end', () => (arrival.complete = true));
    req.on('error', () => {});
    res.on('error', () => {});
    if (handler !== undefined) handler(req, res, arrival);
    else req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

/** A front server for a balancer (or any handler), counting its own open sockets. */
export interface Front {
  server: Server;
  port: number;
  open: Set<Socket>;
  close(): Promise<void>;
}

export async function front(handler: RequestListener, options: http.ServerOptions = {}, setup?: (server: Server) => void): Promise<Front> {
  const server = http.createServer(options, handler);
  setup?.(server);
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    open,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What a raw client saw: every byte until the server closed or went quiet, and how it ended. */
export interface RawReply {
  text: string;
  /** Status codes of every response in `text`, in order. */
  statuses: number[];
  /** The server closed the connection (rather than the client giving up after `idleMs`). */
  closedByServer: boolean;
  elapsed: number;
}

const STATUS_LINE = /HTTP\/1\.1 (\d{3}) /g;

/**
 * Writes `parts` on a fresh socket, `gapMs` apart (a slow client when > 0), and collects the
 * reply until the server closes or `idleMs` pass in silence.
 */
export function raw(port: number, parts: string | Array<string | Buffer>, options: { gapMs?: number; idleMs?: number } = {}): Promise<RawReply> {
  const list = typeof parts === 'string' ? [parts] : parts;
  const idleMs = options.idleMs ?? 600;
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let closedByServer = true;
    let timer: NodeJS.Timeout | undefined;
    const idle = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        closedByServer = false;
        socket.destroy();
      }, idleMs);
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      idle();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const statuses = [...text.matchAll(STATUS_LINE)].map((m) => Number(m[1]));
      resolve({ text, statuses, closedByServer, elapsed: Date.now() - started });
    });
    socket.on('connect', async () => {
      idle();
      for (let i = 0; i < list.length && !socket.destroyed; i++) {
        if (i > 0 && options.gapMs) await delay(options.gapMs);
        if (socket.destroyed) break;
        socket.write(list[i]!);
        if (options.gapMs) idle();
      }
    });
  });
}
