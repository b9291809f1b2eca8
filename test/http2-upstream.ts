import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, {
  type ClientHttp2Session,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type SecureServerOptions,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { END_HEADERS, END_STREAM, frame, GOAWAY, HEADERS, SETTINGS } from './abuse/h2-frames.js';

// Real node:http2 upstreams for the HTTP/2 engine's tests, counting the sessions the balancer opens.

export interface H2Upstream {
  server: Http2Server;
  port: number;
  /** `h2c://127.0.0.1:port`, or `https://localhost:port` with TLS. */
  url: string;
  /** Sessions open now. */
  sessions: Set<Http2Session>;
  /** Sessions opened since start. */
  opened: number;
  /** Streams received since start. */
  streams: number;
  /** Headers of every stream received, in order. */
  seen: IncomingHttpHeaders[];
  /** The TCP sockets under the sessions, to cut a connection the way a crash would. */
  sockets: Set<import('node:net').Socket>;
  close(): Promise<void>;
}

export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, upstream: H2Upstream) => void;

/** Answers with its name and what it saw: `{ name, method, path, authority, headers, body }` as JSON; `/trailers` adds a trailer. */
export function echo(name: string): StreamHandler {
  return (stream, headers) => {
    if (headers[':path'] === '/trailers') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-checksum': 'abc123' }));
      stream.end('with trailers');
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (stream.closed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-backend': name });
      const body = Buffer.concat(chunks).toString();
      stream.end(JSON.stringify({ name, method: headers[':method'], path: headers[':path'], authority: headers[':authority'], headers, body }));
    });
  };
}

export async function h2upstream(handler: StreamHandler, options: { settings?: Settings; tls?: SecureServerOptions; host?: string } = {}): Promise<H2Upstream> {
  const server = (
    options.tls === undefined ? http2.createServer({ settings: options.settings }) : http2.createSecureServer({ ...options.tls, settings: options.settings })
  ) as Http2Server;
  const state: H2Upstream = {
    server,
    port: 0,
    url: '',
    sessions: new Set(),
    opened: 0,
    streams: 0,
    seen: [],
    sockets: new Set(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of state.sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (socket: import('node:net').Socket) => {
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
  });
  server.on('secureConnection', (socket: import('node:net').Socket) => {
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
  });
  server.on('session', (session: Http2Session) => {
    state.opened++;
    state.sessions.add(session);
    session.on('error', () => {});
    session.on('close', () => state.sessions.delete(session));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    state.streams++;
    state.seen.push(headers);
    stream.on('error', () => {});
    handler(stream, headers, state);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = options.tls === undefined ? `h2c://${host}:${state.port}` : `https://localhost:${state.port}`;
  return state;
}

/** A front server (HTTP/1.1, or h2c for `h2: true`) running `handler` (the balancer). */
export async function front(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  h2 = false,
): Promise<{ port: number; url: string; close(): Promise<void> }> {
  const server = h2 ? http2.createServer(handler as never) : http.createServer(handler);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket: import('node:net').Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
}

/** One request on an h2 client session; resolves on a complete response, rejects on a reset. */
export function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let text = '';
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: text, trailers }));
    stream.on('error', reject);
    stream.on('close', () => reject(new Error(`stream closed with code ${stream.rstCode}`)));
    if (body !== undefined) stream.end(body);
  });
}

export interface RawUpstream {
  port: number;
  url: string;
  /** Frames of each type received, by type number. */
  received: Map<number, number>;
  /** Connections open now. */
  open: number;
  close(): Promise<void>;
}

/**
 * A hand-written h2c server, for what node:http2 servers will not send: `onHeaders` answers each
 * request's HEADERS frame (stream id given) with raw frames. It acknowledges SETTINGS, never PINGs.
 */
export async function rawUpstream(onHeaders: (streamId: number) => Buffer[]): Promise<RawUpstream> {
  const sockets = new Set<import('node:net').Socket>();
  const state: RawUpstream = { port: 0, url: '', received: new Map(), open: 0, close: async () => {} };
  const server = (await import('node:net')).createServer((socket) => {
    sockets.add(socket);
    state.open++;
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      state.open--;
    });
    socket.write(frame(SETTINGS, 0, 0));
    let buffered = Buffer.alloc(0);
    let prefaced = false;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!prefaced) {
        if (buffered.length < 24) return;
        buffered = buffered.subarray(24);
        prefaced = true;
      }
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) return;
        const type = buffered[3]!;
        const flags = buffered[4]!;
        const streamId = buffered.readUInt32BE(5) & 0x7fffffff;
        buffered = buffered.subarray(9 + length);
        state.received.set(type, (state.received.get(type) ?? 0) + 1);
        if (type === SETTINGS && (flags & 1) === 0) socket.write(frame(SETTINGS, 1, 0));
        if (type === HEADERS) for (const out of onHeaders(streamId)) socket.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `h2c://127.0.0.1:${state.port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return state;
}

/** A response HEADERS frame with `:status: 200` only (HPACK static index 8). */
export function ok200(streamId: number, endStream = false): Buffer {
  return frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, Buffer.from([0x88]));
}

/** GOAWAY with `lastStreamId` and `code`. */
export function goaway(lastStreamId: number, code = 0): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId);
  payload.writeUInt32BE(code, 4);
  return frame(GOAWAY, 0, 0, payload);
}
