import http, { type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Size of every benchmark response body. */
export const BODY_SIZE = 1024;
export const BODY = Buffer.alloc(BODY_SIZE, 'x');
/** The response head every backend, and every from-memory variant, sends. Cacheable, so cache variants hit. */
export const RESPONSE_HEADERS = {
  'content-type': 'text/plain',
  'content-length': String(BODY_SIZE),
  'cache-control': 'public, max-age=3600',
};

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
}

/** Keep-alive backends on 127.0.0.1 answering every request with 1 KB, after draining any body. */
export async function startBackends(options: BackendOptions = {}): Promise<Backends> {
  const count = options.count ?? 3;
  const delay = options.delay ?? 0;
  let served = 0;
  const answer = (res: http.ServerResponse): void => {
    served++;
    res.writeHead(200, RESPONSE_HEADERS);
    res.end(BODY);
  };
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      listen(
        http.createServer((req, res) => {
          req.resume();
          if (delay > 0) setTimeout(answer, delay, res);
          else answer(res);
        }),
      ),
    ),
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
  server.keepAliveTimeout = 60_000;
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
