import http from 'node:http';
import http2, { type Http2SecureServer, type Http2Server } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

type Server = http.Server | HttpsServer | Http2SecureServer | Http2Server;

/** Size of every benchmark response body. */
export const BODY_SIZE = 1024;
export const BODY = Buffer.alloc(BODY_SIZE, 'x');
/** The response head every backend, and every from-memory variant, sends. Cacheable, so cache variants hit. */
export const RESPONSE_HEADERS = {
  'content-type': 'text/plain',
  'content-length': String(BODY_SIZE),
  'cache-control': 'public, max-age=3600',
};
/** Paths starting with this are answered with `Cache-Control: no-store`: the cache-miss variants' requests. */
export const NO_STORE_PATH = '/no-store/';
const NO_STORE_HEADERS = { ...RESPONSE_HEADERS, 'cache-control': 'no-store' };
/** Paths starting with this get a 503 once in `FLAKY_EVERY` requests (per backend), else an uncacheable 200: the soak's retries. */
export const FLAKY_PATH = '/flaky/';
export const FLAKY_EVERY = 20;

export interface Backends {
  urls: string[];
  /** Requests answered, all backends together. */
  served(): number;
  close(): Promise<void>;
}

export interface BackendOptions {
  count?: number;
  /** Milliseconds each answer waits (the `--slow` mode); default 0. */
  delay?: number;
  /** Speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1; their URLs stay `http:`. */
  h2c?: boolean;
}

/**
 * Keep-alive backends on 127.0.0.1 answering every request with 1 KB, after draining any body:
 * cacheable, except under `NO_STORE_PATH`; a 503 now and then under `FLAKY_PATH`.
 */
export async function startBackends(options: BackendOptions = {}): Promise<Backends> {
  const count = options.count ?? 3;
  const delay = options.delay ?? 0;
  let served = 0;
  const answer = (req: http.IncomingMessage, res: http.ServerResponse, flaky: { n: number }): void => {
    served++;
    const url = req.url!;
    if (url.startsWith(FLAKY_PATH) && ++flaky.n % FLAKY_EVERY === 0) {
      res.writeHead(503, { 'content-length': '0', 'cache-control': 'no-store' });
      res.end();
      return;
    }
    res.writeHead(200, url.startsWith(NO_STORE_PATH) || url.startsWith(FLAKY_PATH) ? NO_STORE_HEADERS : RESPONSE_HEADERS);
    res.end(BODY);
  };
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const flaky = { n: 0 };
      const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
        req.resume();
        if (delay > 0) setTimeout(answer, delay, req, res, flaky);
        else answer(req, res, flaky);
      };
      return listen(options.h2c ? http2.createServer(handler as unknown as Parameters<typeof http2.createServer>[0]) : http.createServer(handler));
    }),
  );
  return {
    urls: servers.map((s) => s.url),
    served: () => served,
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

export interface Listening {
  server: Server;
  url: string;
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Listens on an ephemeral port of 127.0.0.1. Idle keep-alive connections are kept for a minute, so
 * the proxies' pooled upstream sockets survive the pause between one round and the next.
 */
export async function listen(server: Server): Promise<Listening> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  if ('keepAliveTimeout' in server) server.keepAliveTimeout = 60_000; // an HTTP/2 server keeps idle sessions open anyway
  server.on('connection', (socket: Socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
