import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';

/** A real 3-master Redis Cluster on 127.0.0.1 for the duration of a test file. */
export interface RedisCluster {
  /** Client ports of the masters (each node's cluster bus is on port + 10000). */
  ports: number[];
  /** Startup nodes for `new Cluster(...)`. */
  nodes: { host: string; port: number }[];
  /** A new connected ioredis Cluster client; `stop()` quits every client made here. */
  client(): Promise<Cluster>;
  /** Quits the clients, stops the servers, removes their directory. */
  stop(): Promise<void>;
}

const MASTERS = 3;
/**
 * Client ports come from here; the bus ports (+10000) then stay below Linux's ephemeral range
 * (32768+), so no outgoing connection of another test can take one between the check and the bind.
 */
const PORT_RANGE: [number, number] = [15000, 22000];

/**
 * Starts three `redis-server --cluster-enabled yes` without persistence, joins them with
 * `redis-cli --cluster create` (no replicas) and waits until every node reports `cluster_state:ok`.
 * Throws when the binaries are missing (tests guard with `skipUnless('redis-cluster')`).
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  if (spawnSync('redis-server', ['--version']).error || spawnSync('redis-cli', ['--version']).error) {
    throw new Error('redis-server and redis-cli are needed for the Redis Cluster tests (apt-get install redis-server)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'proxy-balancer-cluster-'));
  const children: ChildProcess[] = [];
  const clients: Cluster[] = [];
  // A test that dies mid-file must not leave servers behind.
  const killAll = (): void => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    await Promise.all(children.map(stopChild));
    process.removeListener('exit', killAll);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    while (ports.length < MASTERS) {
      const port = await startNode(dir, ports, children);
      ports.push(port);
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await waitForClusterOk(ports);
    const nodes = ports.map((port) => ({ host: '127.0.0.1', port }));
    return {
      ports,
      nodes,
      client: async () => {
        const cluster = new Cluster(nodes, { lazyConnect: true });
        clients.push(cluster);
        await cluster.connect();
        return cluster;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts one node on a port whose bus port is free too; retries on another port if it loses a race for either. */
async function startNode(dir: string, taken: number[], children: ChildProcess[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = PORT_RANGE[0] + Math.floor(Math.random() * (PORT_RANGE[1] - PORT_RANGE[0]));
    if (taken.includes(port) || !(await isFree(port)) || !(await isFree(port + 10_000))) continue;
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--cluster-node-timeout',
        '2000',
      ],
      { stdio: 'ignore' },
    );
    children.push(child);
    if (await waitForPort(port, child)) return port;
    await stopChild(child);
    children.splice(children.indexOf(child), 1);
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether the node listens within 5 s (false when it exited first, e.g. its port was taken meanwhile). */
async function waitForPort(port: number, child: ChildProcess): Promise<boolean> {
  const end = Date.now() + 5000;
  while (Date.now() < end && child.exitCode === null) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function waitForClusterOk(ports: number[]): Promise<void> {
  const end = Date.now() + 20_000;
  const probes = ports.map((port) => new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 }));
  try {
    while (Date.now() < end) {
      const infos = await Promise.all(probes.map((p) => p.cluster('INFO').catch(() => '')));
      if (infos.every((info) => String(info).includes('cluster_state:ok'))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`Redis Cluster on ports ${ports.join(', ')} did not reach cluster_state:ok`);
  } finally {
    await Promise.all(probes.map((p) => p.quit().catch(() => p.disconnect())));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => (clearTimeout(timer), resolve()));
    child.kill('SIGTERM');
  });
}
