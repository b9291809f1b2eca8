/**
 * Memory a server variant holds per connection, read in its own process (`spawnServer` with
 * `--expose-gc`: `heap()` forces a full GC, then reads `process.memoryUsage()`), for
 * `npm run bench:memory` (`memory-run.ts`). Three figures, each a difference of two readings
 * divided by the number of connections it added:
 *
 * - idle client connections: N client sockets that each made one request and stay open, idle
 *   (keep-alive); the reading with them open minus the one before they were opened. They are opened
 *   a few at a time, so the proxy reuses the upstream sockets of its warm-up instead of opening
 *   more: what is measured is the client side only.
 * - in-flight requests: N client connections each with one request the backend holds unanswered;
 *   the reading with all N at the backend minus the one before. Each holds a client socket, an
 *   upstream socket and the request's state in the proxy.
 * - idle pooled upstream sockets: once the held responses are sent and the clients gone, the
 *   upstream sockets the proxy's agent keeps (Node's `maxFreeSockets`, 256 per backend, so at
 *   most 768 here); the reading with them pooled minus the one after the backends closed them.
 *   Closing them, not opening them, is what is measured, so the parsers and buffers the
 *   in-flight phase left in Node's free lists count on neither side.
 *
 * The idle phase runs in one server process and the in-flight and pooled phases in another, both
 * fresh, each after a warm-up (`WARMUP_REQUESTS` over `WARMUP_CONNECTIONS` keep-alive connections),
 * so one phase's leftovers (Node keeps up to 1000 freed HTTP parsers for reuse) are not the next
 * one's baseline.
 */
import http from 'node:http';
import net from 'node:net';
import { BODY, listen, RESPONSE_HEADERS, type Listening } from './backends.js';
import { spawnServer, type ServerProcess } from './harness.js';

/** Requests under this path are held by the backend until `release()`. */
export const HOLD_PATH = '/hold/';
const PATH = '/bench/item?id=1';
const WARMUP_REQUESTS = 2000;
const WARMUP_CONNECTIONS = 10;
/** Idle connections are opened this many at a time: the proxy then needs no more upstream sockets than its warm-up left it. */
const IDLE_OPENERS = 8;
/** In-flight connections are opened in batches of this many (the listen backlog is 511). */
const CONNECT_BATCH = 100;
/** Time for both ends to process closed sockets before a reading. */
const SETTLE_MS = 400;
const WAIT_LIMIT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `process.memoryUsage()` of the server after a full GC, bytes. */
export interface Reading {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

/** The growth between two readings divided by the connections (or sockets) it is for: bytes each. */
export interface PerConnection {
  /** Connections (sockets) the difference is divided by. */
  count: number;
  heapUsed: number;
  external: number;
  rss: number;
  before: Reading;
  after: Reading;
}

export interface ConnectionMemory {
  variant: string;
  /** N: idle client connections opened, and requests held in flight. */
  connections: number;
  idle: PerConnection;
  inFlight: PerConnection;
  /** Per pooled upstream socket; `count` is how many the agent kept (at most `maxFreeSockets` per backend). */
  pooled: PerConnection;
}

/** NaN figures when `count` is 0 (nothing to divide by: no socket was pooled, or the pool changed during its reading). */
function perConnection(count: number, before: Reading, after: Reading): PerConnection {
  const each = (delta: number): number => (count > 0 ? delta / count : Number.NaN);
  return {
    count,
    heapUsed: each(after.heapUsed - before.heapUsed),
    external: each(after.external - before.external),
    rss: each(after.rss - before.rss),
    before,
    after,
  };
}

/** Two forced GCs (the first can leave garbage that only becomes unreachable with it), then the reading. */
async function read(server: ServerProcess): Promise<Reading> {
  await server.heap();
  const { afterGc } = await server.heap();
  const { heapUsed, external, arrayBuffers, rss } = afterGc!;
  return { heapUsed, external, arrayBuffers, rss };
}

export interface HoldBackends {
  urls: string[];
  /** Requests under `HOLD_PATH` waiting for `release()`. */
  held(): number;
  /** Connections to the backends open now (the proxies' upstream sockets). */
  open(): number;
  /** Answers every held request (1 KB, as the other requests are answered at once). */
  release(): void;
  /** Closes every connection to the backends (the proxies' pooled sockets with them). */
  dropConnections(): void;
  close(): Promise<void>;
}

/** Keep-alive backends answering 1 KB at once, or, under `HOLD_PATH`, only when released. */
export async function startHoldBackends(count = 3): Promise<HoldBackends> {
  const held: http.ServerResponse[] = [];
  const sockets = new Set<net.Socket>();
  const answer = (res: http.ServerResponse): void => {
    res.writeHead(200, RESPONSE_HEADERS);
    res.end(BODY);
  };
  const servers: Listening[] = await Promise.all(
    Array.from({ length: count }, () =>
      listen(
        http.createServer((req, res) => {
          req.resume();
          if (req.url!.startsWith(HOLD_PATH)) held.push(res);
          else answer(res);
        }),
      ),
    ),
  );
  for (const { server } of servers) {
    server.on('connection', (socket: net.Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
  }
  return {
    urls: servers.map((s) => s.url),
    held: () => held.length,
    open: () => sockets.size,
    release: () => {
      for (const res of held.splice(0)) answer(res);
    },
    dropConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      held.length = 0;
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

/**
 * A raw keep-alive HTTP/1.1 client connection: one request at a time, the answer read to the end
 * of its `Content-Length` body. Raw, so that the load side holds N connections cheaply and sends
 * exactly one small request head on each.
 */
class Connection {
  readonly socket: net.Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #bodyLeft = -1;
  #status = 0;
  #waiting: { resolve: () => void; reject: (err: Error) => void } | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed before the answer')));
  }

  static open(port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Sends a GET for `path`; resolves once its 200 answer has been read whole. */
  get(path: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#buffer = Buffer.alloc(0);
      this.#bodyLeft = -1;
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    });
  }

  close(): void {
    this.#waiting = undefined;
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    if (this.#bodyLeft < 0) {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buffer.toString('latin1', 0, end);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
      if (length === undefined) {
        this.#fail(new Error(`answer without Content-Length: ${head.slice(0, 200)}`));
        return;
      }
      this.#status = Number(head.slice(9, 12));
      this.#bodyLeft = Number(length) - (this.#buffer.length - end - 4);
      this.#buffer = Buffer.alloc(0);
    } else this.#bodyLeft -= chunk.length;
    if (this.#bodyLeft > 0) return;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    this.#bodyLeft = -1;
    if (this.#status === 200) waiting?.resolve();
    else waiting?.reject(new Error(`status ${this.#status}`));
  }

  #fail(err: Error): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(err);
  }
}

function closeAll(connections: Connection[]): void {
  for (const c of connections) c.close();
  connections.length = 0;
}

async function until(what: string, done: () => boolean, every = 20): Promise<void> {
  const began = Date.now();
  while (!done()) {
    if (Date.now() - began > WAIT_LIMIT_MS) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

/** Waits until `count()` reads the same twice, 100 ms apart. */
async function untilSteady(count: () => number): Promise<void> {
  let last = -1;
  await until(
    'a steady count',
    () => {
      const now = count();
      const steady = now === last;
      last = now;
      return steady;
    },
    100,
  );
}

/** The warm-up: JIT-compiles the request path and leaves the proxy a few pooled upstream sockets. */
async function warmUp(port: number): Promise<void> {
  const connections = await Promise.all(Array.from({ length: WARMUP_CONNECTIONS }, () => Connection.open(port)));
  try {
    await Promise.all(
      connections.map(async (c) => {
        for (let i = 0; i < WARMUP_REQUESTS / WARMUP_CONNECTIONS; i++) await c.get(PATH);
      }),
    );
  } finally {
    closeAll(connections);
  }
  await sleep(SETTLE_MS);
}

function serverPort(server: ServerProcess): number {
  return Number(new URL(server.url).port);
}

/** Idle phase, in a fresh server process: N client connections, one request each, left open. */
async function idlePhase(variant: string, n: number, backends: HoldBackends): Promise<PerConnection> {
  const server = await spawnServer(variant, backends.urls, { nodeArgs: ['--expose-gc'] });
  const connections: Connection[] = [];
  try {
    const port = serverPort(server);
    await warmUp(port);
    const before = await read(server);
    let opened = 0;
    await Promise.all(
      Array.from({ length: IDLE_OPENERS }, async () => {
        while (opened < n) {
          opened++;
          const c = await Connection.open(port);
          connections.push(c);
          await c.get(PATH);
        }
      }),
    );
    await sleep(SETTLE_MS);
    const after = await read(server);
    return perConnection(n, before, after);
  } finally {
    closeAll(connections);
    await server.close();
  }
}

/** In-flight and pooled phases, in a fresh server process. */
async function inFlightPhase(variant: string, n: number, backends: HoldBackends): Promise<Pick<ConnectionMemory, 'inFlight' | 'pooled'>> {
  const server = await spawnServer(variant, backends.urls, { nodeArgs: ['--expose-gc'] });
  const connections: Connection[] = [];
  try {
    const port = serverPort(server);
    await warmUp(port);
    const before = await read(server);
    const answers: Promise<void>[] = [];
    for (let i = 0; i < n; i += CONNECT_BATCH) {
      const batch = await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, n - i) }, () => Connection.open(port)));
      for (const c of batch) {
        connections.push(c);
        answers.push(c.get(`${HOLD_PATH}item?id=${connections.length}`));
      }
    }
    await until(`${n} requests at the backends`, () => backends.held() >= n);
    await sleep(SETTLE_MS);
    const inFlight = perConnection(n, before, await read(server));

    backends.release();
    await Promise.all(answers);
    closeAll(connections);
    // The agent closes the upstream sockets beyond its pool; the server, the N client sockets.
    await untilSteady(backends.open);
    await sleep(SETTLE_MS + n / 10);
    // The balancer's agent closes a free socket after 4 s idle: read before that, and count the
    // pooled sockets on both sides of the reading to notice it if the machine was too slow.
    const pooledBefore = backends.open();
    const pooledReading = await read(server);
    const pooledAfter = backends.open();
    backends.dropConnections();
    await until('the backends to close every connection', () => backends.open() === 0);
    await sleep(SETTLE_MS);
    const drained = await read(server);
    const pooled = perConnection(pooledAfter === pooledBefore ? pooledBefore : 0, drained, pooledReading);
    return { inFlight, pooled };
  } finally {
    backends.release();
    closeAll(connections);
    await server.close();
  }
}

/** One measurement of `variant` with `n` connections: the idle phase, then the in-flight and pooled phases, each in a fresh server process. */
export async function connectionMemory(variant: string, n: number, backends: HoldBackends): Promise<ConnectionMemory> {
  const idle = await idlePhase(variant, n, backends);
  const { inFlight, pooled } = await inFlightPhase(variant, n, backends);
  return { variant, connections: n, idle, inFlight, pooled };
}
