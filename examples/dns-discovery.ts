/**
 * Service discovery: the pool follows a DNS name, one target per address, as NGINX `server …
 * resolve`, HAProxy `server-template` or Envoy `STRICT_DNS` do. Three backends listen on
 * 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all loopback on Linux) on one port, like three pods behind a
 * Kubernetes headless service; the demo changes the records and shows the traffic follow:
 *
 *   1. api.internal has one address: one target;
 *   2. two more addresses appear: added, each takes a third of the traffic;
 *   3. the first one is removed from DNS: drained;
 *   4. the DNS server goes away: the last good set stays, the failures are counted.
 *
 * With dnsmasq installed (apt-get install dnsmasq) the demo starts its own on a free port of
 * 127.0.0.1 and uses `dnsTargets()`. Without it, the same steps run through a custom `Discovery`
 * that reads the addresses from a JSON file: the shape a Consul or Kubernetes watcher takes.
 *
 *   npx tsx examples/dns-discovery.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as dnsPromises } from 'node:dns';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { dnsTargets, loadBalance, type Discovery, type DiscoveryListener, type LoadBalancer } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution } from './backends.js';

const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/local/sbin/dnsmasq'].find(existsSync);

/**
 * A custom Discovery: reads `[ "http://10.0.0.1:3000", ... ]` from a JSON file every 500 ms and
 * reports the whole set, or the error (a missing or broken file keeps the last set).
 */
class FileDiscovery implements Discovery {
  readonly name: string;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(readonly path: string) {
    this.name = `file ${path}`;
  }

  start(listener: DiscoveryListener): void {
    const poll = async (): Promise<void> => {
      try {
        listener.update(JSON.parse(await readFile(this.path, 'utf8')) as string[]);
      } catch (err) {
        listener.error(err as Error);
      }
      if (!this.#stopped) this.#timer = setTimeout(poll, 500).unref();
    };
    void poll();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}

// Three backends, one port, three addresses.
const backends: http.Server[] = [];
let backendPort = envPort('BACKEND_PORT', 3001);
for (const [i, host] of HOSTS.entries()) {
  const name = `pod-${i + 1} (${host})`;
  const server = http.createServer((req, res) => {
    res.setHeader('x-backend', name);
    res.end(`${JSON.stringify({ backend: name, host: req.headers.host })}\n`);
  });
  backendPort = await listen(server, backendPort, host);
  backends.push(server);
}
const names = HOSTS.map((host, i) => `pod-${i + 1} (${host})`);

const dir = mkdtempSync(join(tmpdir(), 'pb-dns-demo-'));

/** What the demo changes: the addresses behind the name, and whether the source still answers. */
interface Source {
  targets: Discovery;
  setAddresses(addresses: string[]): Promise<void>;
  breakDown(): Promise<void>;
  close(): Promise<void>;
}

const source = DNSMASQ ? await dnsmasqSource(DNSMASQ) : fileSource();
await source.setAddresses(HOSTS.slice(0, 1));
const lb = loadBalance({ targets: source.targets, changeOrigin: true });
const server = http.createServer(lb);
const port = await listen(server, envPort('PORT', 8080));
const front = `http://127.0.0.1:${port}`;
console.log(`Front on ${front}; targets from ${source.targets.name}\n`);

await lb.firstDiscovery();
console.log(`1. One address: ${targetsOf(lb)}`);
printDistribution(await burst(`${front}/`, 30, 5), names);

let changed = Date.now();
await source.setAddresses(HOSTS);
await until(() => lb.pool.ready.length === 3);
console.log(`\n2. Three addresses, added ${Date.now() - changed} ms after the change: ${targetsOf(lb)}`);
printDistribution(await burst(`${front}/`, 30, 5), names);

changed = Date.now();
await source.setAddresses(HOSTS.slice(1));
await until(() => lb.pool.targets.length === 2);
console.log(`\n3. ${HOSTS[0]} removed, drained ${Date.now() - changed} ms after the change: ${targetsOf(lb)}`);
printDistribution(await burst(`${front}/`, 30, 5), names);

await source.breakDown();
await until(() => lb.stats().discovery?.[0]?.failing === true, 10_000);
const stats = lb.stats().discovery![0]!;
console.log(`\n4. The source fails (${stats.lastError?.message}); ${stats.errors} failed round(s), the last ${stats.targets} targets stay:`);
printDistribution(await burst(`${front}/`, 30, 5), names);
console.log('\nlb.stats().discovery:', lb.stats().discovery);

console.log(`\nTry:\n  curl -s http://localhost:${port}/   # Host seen by the backend: the DNS name (changeOrigin)\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await Promise.all(backends.map((b) => closeServer(b)));
  await source.close();
  rmSync(dir, { recursive: true, force: true });
});

function targetsOf(balancer: LoadBalancer): string {
  return balancer.pool.targets.map((t) => `${t.key} (${t.state})`).join(', ');
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** A real dnsmasq on a free port, authoritative for `.internal`, answering with a 1 s TTL. */
async function dnsmasqSource(binary: string): Promise<Source> {
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, '');
  const dnsPort = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      `--port=${dnsPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      `--addn-hosts=${hostsFile}`,
      '--local-ttl=1',
      '--local=/internal/',
      '--pid-file=',
      `--user=${userInfo().username}`,
    ],
    { stdio: 'ignore' },
  );
  await answering(dnsPort);
  return {
    // Re-resolved when the 1 s TTL runs out, at most every 5 s and at least 500 ms apart.
    targets: dnsTargets(`http://api.internal:${backendPort}`, { servers: [`127.0.0.1:${dnsPort}`], interval: 5000, minInterval: 500, timeout: 300, tries: 1 }),
    async setAddresses(addresses) {
      writeFileSync(hostsFile, addresses.map((a) => `${a} api.internal\n`).join(''));
      child.kill('SIGHUP'); // dnsmasq re-reads its hosts files
      await new Promise((resolve) => setTimeout(resolve, 50));
    },
    async breakDown() {
      await stop(child);
    },
    close: () => stop(child),
  };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port: free } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return free;
}

async function answering(dnsPort: number): Promise<void> {
  const resolver = new dnsPromises.Resolver({ timeout: 100, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  for (let i = 0; i < 100; i++) {
    try {
      await resolver.resolve4('api.internal');
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTFOUND' || (err as NodeJS.ErrnoException).code === 'ENODATA') return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('dnsmasq did not start');
}

function fileSource(): Source {
  console.log('dnsmasq not found (apt-get install dnsmasq): using a custom Discovery that reads a JSON file instead.\n');
  const file = join(dir, 'targets.json');
  writeFileSync(file, '[]');
  return {
    targets: new FileDiscovery(file),
    async setAddresses(addresses) {
      writeFileSync(file, JSON.stringify(addresses.map((a) => ({ url: `http://${a}:${backendPort}`, hostname: 'api.internal' }))));
    },
    async breakDown() {
      writeFileSync(file, '{ not json');
    },
    close: async () => {},
  };
}
