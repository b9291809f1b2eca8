import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { delay } from '../helpers.js';
import { parseResponses, type Message, type Parsed } from './http1.js';

/** One request as a raw backend read it. */
export class RawRequest extends EventEmitter<{ data: [Buffer]; end: [] }> {
  method = '';
  url = '';
  version = '';
  /** Field names lower-cased; repeated fields joined with ', '. */
  headers: Record<string, string> = {};
  head = '';
  /** Body bytes received so far. */
  received = 0;
  /** The whole body arrived. */
  complete = false;
  readonly chunks: Buffer[] = [];

  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once `bytes` body bytes arrived (or the body ended / the socket closed). */
  waitForBody(bytes = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.complete || this.received >= bytes) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.complete || this.received >= bytes) {
          this.off('data', check);
          this.off('end', check);
          resolve();
        }
      };
      this.on('data', check);
      this.on('end', check);
    });
  }
}

/** The backend's side of one connection. */
export interface RawConnection {
  socket: Socket;
  /** Requests read on this connection so far, in order. */
  requests: RawRequest[];
  /** Writes bytes (strings as latin1). */
  write(data: string | Buffer): boolean;
  /** Writes `parts` with `gapMs` between them. */
  writeSlowly(parts: Array<string | Buffer>, gapMs: number): Promise<void>;
}

/** Answers one request by writing bytes on the connection (and maybe closing it). */
export type Script = (conn: RawConnection, req: RawRequest) => void | Promise<void>;

export interface RawBackend {
  urls: string[];
  ports: number[];
  /** Requests received, by path, over every listener. */
  hits: Map<string, number>;
  /** Every request received. */
  requests: RawRequest[];
  /** Sockets open now. */
  open: Set<Socket>;
  /** Connections accepted, and how many ended in a reset (ECONNRESET/EPIPE) seen by the backend. */
  connections: number;
  resets: number;
  /** Resolves once no backend socket is open, or rejects after `ms`. */
  drained(ms?: number): Promise<void>;
  close(): Promise<void>;
}

export const NORMAL_BODY = 'normal response';
const NORMAL = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${NORMAL_BODY.length}\r\n\r\n${NORMAL_BODY}`;

/**
 * A raw `node:net` HTTP/1.1 backend on `listeners` ports (one per target) that writes exactly what
 * `script` says. It reads request heads and Content-Length or chunked bodies itself, so a script
 * may answer before, during or after the upload. `/normal` and `/health` get a well-formed 200.
 */
export async function rawBackend(script: Script, listeners = 2): Promise<RawBackend> {
  const servers: net.Server[] = [];
  const state: RawBackend = {
    urls: [],
    ports: [],
    hits: new Map(),
    requests: [],
    open: new Set(),
    connections: 0,
    resets: 0,
    drained: async (ms = 3000) => {
      const end = Date.now() + ms;
      while (state.open.size > 0 && Date.now() < end) await delay(10);
      assert.equal(state.open.size, 0, `the backend still has ${state.open.size} open socket(s) from the balancer`);
    },
    close: async () => {
      for (const socket of state.open) socket.destroy();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
  const onConnection = (socket: Socket): void => {
    state.connections++;
    state.open.add(socket);
    socket.on('close', () => state.open.delete(socket));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') state.resets++;
    });
    const conn: RawConnection = {
      socket,
      requests: [],
      write: (data) => (socket.destroyed ? false : socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)),
      writeSlowly: async (parts, gapMs) => {
        for (const part of parts) {
          if (socket.destroyed) return;
          conn.write(part);
          await delay(gapMs);
        }
      },
    };
    readRequests(socket, conn, (req) => {
      state.requests.push(req);
      const path = req.url.split('?')[0]!;
      state.hits.set(path, (state.hits.get(path) ?? 0) + 1);
      if (path === '/normal' || path === '/health') {
        req.waitForBody().then(() => conn.write(NORMAL));
        return;
      }
      void script(conn, req);
    });
  };
  for (let i = 0; i < listeners; i++) {
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    state.ports.push(port);
    state.urls.push(`http://127.0.0.1:${port}`);
  }
  return state;
}

/** Parses request heads and bodies off `socket`, calling `onRequest` at each head. */
function readRequests(socket: Socket, conn: RawConnection, onRequest: (req: RawRequest) => void): void {
  let buffer: Buffer = Buffer.alloc(0);
  let current: RawRequest | undefined;
  // Body state of `current`: bytes still due for a Content-Length body, or -1 while reading chunked.
  let remaining = 0;
  let chunkedState: { size: number; inData: boolean; trailers: boolean } | undefined;
  const finish = (): void => {
    current!.complete = true;
    current!.emit('end');
    current = undefined;
  };
  const pump = (): void => {
    for (;;) {
      if (current === undefined) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 4);
        const req = new RawRequest();
        const [requestLine = '', ...lines] = head.split('\r\n');
        const [method = '', url = '', version = ''] = requestLine.split(' ');
        Object.assign(req, { method, url, version, head });
        for (const line of lines) {
          const colon = line.indexOf(':');
          if (colon <= 0) continue;
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          req.headers[name] = req.headers[name] === undefined ? value : `${req.headers[name]}, ${value}`;
        }
        current = req;
        conn.requests.push(req);
        chunkedState = undefined;
        remaining = 0;
        if (req.headers['transfer-encoding']?.toLowerCase().includes('chunked')) chunkedState = { size: 0, inData: false, trailers: false };
        else remaining = Number(req.headers['content-length'] ?? 0) || 0;
        onRequest(req);
        if (chunkedState === undefined && remaining === 0) finish();
        continue;
      }
      if (chunkedState === undefined) {
        if (buffer.length === 0) return;
        const take = buffer.subarray(0, remaining);
        buffer = buffer.subarray(take.length);
        remaining -= take.length;
        deliver(current, take);
        if (remaining === 0) finish();
        continue;
      }
      // Chunked request body.
      if (chunkedState.inData) {
        if (buffer.length === 0) return;
        const take = buffer.subarray(0, chunkedState.size);
        buffer = buffer.subarray(take.length);
        chunkedState.size -= take.length;
        deliver(current, take);
        if (chunkedState.size === 0) {
          if (buffer.length < 2) return;
          buffer = buffer.subarray(2);
          chunkedState.inData = false;
        }
        continue;
      }
      const lineEnd = buffer.indexOf('\r\n');
      if (lineEnd < 0) return;
      const line = buffer.subarray(0, lineEnd).toString('latin1');
      buffer = buffer.subarray(lineEnd + 2);
      if (chunkedState.trailers) {
        if (line === '') finish();
        continue;
      }
      const size = Number.parseInt(line, 16);
      if (size === 0) chunkedState.trailers = true;
      else chunkedState = { size, inData: true, trailers: false };
    }
  };
  socket.on('data', (data: Buffer) => {
    buffer = buffer.length === 0 ? data : Buffer.concat([buffer, data]);
    pump();
  });
  socket.on('close', () => current?.emit('end'));
}

function deliver(req: RawRequest, chunk: Buffer): void {
  req.received += chunk.length;
  if (req.chunks.length < 4096) req.chunks.push(chunk);
  req.emit('data', chunk);
}

/** What a raw client saw on one connection. */
export interface ClientReply extends Parsed {
  bytes: Buffer;
  /** The final response, if its head arrived. */
  final: Message | undefined;
  /** 1xx responses before it. */
  interim: Message[];
  /** The server ended the connection (FIN or reset), rather than the client giving up after `idleMs`. */
  closedByServer: boolean;
  reset: boolean;
  /** Milliseconds from connect to the final response's head (NaN if none) and to the end. */
  headAt: number;
  /** Milliseconds from connect to the first byte received (NaN if none). */
  firstByteAt: number;
  elapsed: number;
}

export interface SendOptions {
  /** The method, for reading the response (HEAD has no body); default the request line's. */
  method?: string;
  /** Give up after this long without a byte; default 1500 ms. */
  idleMs?: number;
  /** Milliseconds between parts; default 0. */
  gapMs?: number;
  /** Stop sending parts once a final response head arrived (a client that honours an early answer). */
  stopOnResponse?: boolean;
  /** For `Expect: 100-continue`: send parts after the first only after a 100 arrives, or after this many ms. */
  expectTimeout?: number;
  /** Close the connection once the final response is complete (default true). */
  closeWhenDone?: boolean;
}

/**
 * Sends `parts` (latin1 strings or bytes) on a fresh connection to 127.0.0.1:`port` and reads the
 * reply until the server closes, the response is complete, or `idleMs` pass in silence.
 */
export function send(port: number, parts: string | Array<string | Buffer>, options: SendOptions = {}): Promise<ClientReply> {
  const list = (typeof parts === 'string' ? [parts] : parts).map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
  const method = options.method ?? list[0]!.toString('latin1').split(' ', 1)[0]!;
  const idleMs = options.idleMs ?? 1500;
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let closedByServer = true;
    let reset = false;
    let headAt = Number.NaN;
    let firstByteAt = Number.NaN;
    let timer: NodeJS.Timeout | undefined;
    let gotContinue: (() => void) | undefined;
    let finalSeen = false;
    const idle = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        closedByServer = false;
        socket.destroy();
      }, idleMs);
    };
    socket.on('data', (chunk: Buffer) => {
      if (received.length === 0) firstByteAt = Date.now() - started;
      received.push(chunk);
      idle();
      const parsed = parseResponses(Buffer.concat(received), method, false);
      if (parsed.messages.some((m) => m.status === 100)) gotContinue?.();
      const final = parsed.messages.find((m) => m.status >= 200 || m.status === 101);
      if (final !== undefined && !finalSeen) {
        finalSeen = true;
        headAt = Date.now() - started;
        gotContinue?.();
      }
      if (final?.complete && final.framing !== 'close' && options.closeWhenDone !== false) {
        closedByServer = false;
        socket.destroy();
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const bytes = Buffer.concat(received);
      const parsed = parseResponses(bytes, method, closedByServer);
      const messages = parsed.messages;
      const finalIndex = messages.findIndex((m) => m.status >= 200 || m.status === 101);
      const final = finalIndex < 0 ? undefined : messages[finalIndex];
      // A close-delimited body cut by a reset is not complete.
      if (final !== undefined && final.framing === 'close' && reset) final.complete = false;
      resolve({
        ...parsed,
        bytes,
        final,
        interim: finalIndex < 0 ? messages : messages.slice(0, finalIndex),
        closedByServer,
        reset,
        headAt,
        firstByteAt,
        elapsed: Date.now() - started,
      });
    });
    socket.on('connect', async () => {
      idle();
      for (let i = 0; i < list.length && !socket.destroyed; i++) {
        if (i === 1 && options.expectTimeout !== undefined) {
          const expectTimeout = options.expectTimeout;
          await new Promise<void>((r) => {
            const t = setTimeout(r, expectTimeout);
            gotContinue = () => {
              clearTimeout(t);
              r();
            };
          });
          gotContinue = undefined;
        } else if (i > 0 && options.gapMs) await delay(options.gapMs);
        if (socket.destroyed || (options.stopOnResponse && finalSeen)) break;
        if (!socket.write(list[i]!)) await new Promise((r) => socket.once('drain', r));
      }
    });
  });
}

/** The status page body the balancer answers errors with. */
export const ERROR_BODIES: Record<number, string> = { 502: 'Bad Gateway\n', 503: 'Service Unavailable\n', 504: 'Gateway Timeout\n' };

/** A describable summary of a reply for assertion messages. */
export function describeReply(reply: ClientReply): string {
  const final = reply.final;
  const what =
    final === undefined
      ? 'no response'
      : `${final.status} ${final.framing}${final.complete ? ' complete' : ' INCOMPLETE'} body ${final.body.length} B ${JSON.stringify(final.body.subarray(0, 60).toString('latin1'))}`;
  return `${what}; interim [${reply.interim.map((m) => m.status).join(',')}]; ${reply.closedByServer ? (reply.reset ? 'reset by server' : 'closed by server') : 'closed by client'}; error ${reply.error ?? 'none'}; ${reply.elapsed} ms`;
}

/** The client got exactly this complete response. */
export function assertComplete(reply: ClientReply, status: number, body?: string | Buffer): Message {
  const final = reply.final;
  assert.ok(final?.complete, `expected a complete ${status}, got ${describeReply(reply)}`);
  assert.equal(final.status, status, describeReply(reply));
  if (body !== undefined) assert.ok(final.body.equals(typeof body === 'string' ? Buffer.from(body, 'latin1') : body), `body differs: ${describeReply(reply)}`);
  return final;
}

/** The balancer's own error page with `status`, complete. */
export function assertGatewayError(reply: ClientReply, status: 502 | 504): void {
  const final = assertComplete(reply, status, ERROR_BODIES[status]);
  assert.equal(final.headers.find(([n]) => n.toLowerCase() === 'cache-control')?.[1], 'no-store');
}

/**
 * The client saw a visibly cut response: a head (with `status` if given) whose body's framing never
 * completed, and a connection closed by the server. Never a short body with a clean end.
 */
export function assertCut(reply: ClientReply, status?: number): void {
  assert.ok(reply.closedByServer, `the balancer left the connection open: ${describeReply(reply)}`);
  const final = reply.final;
  if (final === undefined) return;
  assert.ok(!final.complete, `a cut response arrived as complete: ${describeReply(reply)}`);
  assert.notEqual(final.framing, 'close', 'a close-delimited body to an HTTP/1.1 client cannot show a cut');
  if (status !== undefined) assert.equal(final.status, status, describeReply(reply));
}

/** Either the balancer's 502/504 (nothing was relayed yet) or a visibly cut response. */
export function assertErrorOrCut(reply: ClientReply, status: 502 | 504 = 502): void {
  if (reply.final?.complete) assertGatewayError(reply, status);
  else assertCut(reply);
}

export function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test.local\r\n${extra}\r\n`;
}

/** Races `promise` against `ms`: a close or drain that never resolves fails the test instead of hanging it. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
