import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';

/** A Redis server for the duration of a test file: one spawned here, or the one `REDIS_URL` names. */
export interface RedisServer {
  url: string;
  port: number;
  /**
   * Prefix for every key the test file writes (`pb-test:<random>:`), unique per `startRedis()`, so
   * test files can share one `REDIS_URL` server with each other and with whatever else lives there.
   */
  prefix: string;
  /** Stops the spawned server; on a `REDIS_URL` server, deletes the keys under `prefix` instead. */
  stop(): Promise<void>;
}

/** A redis-server this test file spawned itself, so it can be hung, resumed and killed. */
export interface OwnRedisServer extends RedisServer {
  /** SIGSTOP: the server keeps its connections but answers nothing (a hung dependency). */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** SIGKILL: connections drop at once, nothing listens on the port; resolves once it exited. */
  kill(): Promise<void>;
}

/**
 * A Redis server for one test file. With `REDIS_URL` set, that server (its keys are isolated by
 * `prefix` and removed by `stop()`); otherwise a redis-server spawned on a free port (or `onPort`,
 * to bring one back), without persistence. Guard the file with `skipUnless('redis-server')`: this
 * throws when neither exists.
 */
export async function startRedis(onPort?: number): Promise<RedisServer> {
  const external = process.env.REDIS_URL;
  if (external !== undefined && onPort === undefined) {
    const prefix = `pb-test:${randomBytes(6).toString('hex')}:`;
    const url = new URL(external);
    return { url: external, port: Number(url.port || 6379), prefix, stop: () => deleteKeys(external, prefix) };
  }
  return spawnRedis(onPort);
}

/** A redis-server spawned here whatever `REDIS_URL` says (on `onPort`, to bring one back). Guard the file with `skipUnless('redis-process')`. */
export async function spawnRedis(onPort?: number): Promise<OwnRedisServer> {
  const prefix = `pb-test:${randomBytes(6).toString('hex')}:`;
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed (apt-get install redis-server, or set REDIS_URL); guard the test with skipUnless');
  }
  const port = onPort ?? (await freePort());
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  await waitForPort(port);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill(signal);
    }
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    prefix,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}

/** Deletes every key under `prefix` (SCAN, never KEYS, so a busy shared server is not blocked). */
async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    await client.quit();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server did not start on port ${port}`);
}

/** A Redis server and a connected ioredis client for it; `stop()` quits the client (disconnect() would leave a 2 s timer) and the server. */
export async function startRedisWithClient(): Promise<{ server: RedisServer; client: Redis; prefix: string; stop(): Promise<void> }> {
  const server = await startRedis();
  const client = new Redis(server.url, { lazyConnect: true });
  await client.connect();
  return {
    server,
    client,
    prefix: server.prefix,
    stop: async () => {
      await client.quit();
      await server.stop();
    },
  };
}
