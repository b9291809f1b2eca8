import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

/** A real redis-server on 127.0.0.1 for the duration of a test file. */
export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts redis-server on a free port (or `onPort`, to bring one back), without persistence. Throws (failing the test, never
 * skipping it) when the binary is missing: `.ci/run` installs it, so a missing one is a broken setup.
 */
export async function startRedis(onPort?: number): Promise<RedisServer> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('redis-server is not installed: the Redis tests need a real server (apt-get install redis-server; .ci/run does this)');
  }
  const port = onPort ?? (await freePort());
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  await waitForPort(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
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

/** A redis-server and a connected ioredis client for it; `stop()` quits the client (disconnect() would leave a 2 s timer) and the server. */
export async function startRedisWithClient(): Promise<{ server: RedisServer; client: Redis; stop(): Promise<void> }> {
  const server = await startRedis();
  const client = new Redis(server.url, { lazyConnect: true });
  await client.connect();
  return {
    server,
    client,
    stop: async () => {
      await client.quit();
      await server.stop();
    },
  };
}
