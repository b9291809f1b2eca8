import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { promises as dns } from 'node:dns';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** One SRV record: `_service._proto.domain` → `target:port`, with its priority and weight. */
export interface SrvRecord {
  name: string;
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface DnsRecords {
  /** Name → IPv4/IPv6 addresses. */
  hosts?: Record<string, string[]>;
  srv?: SrvRecord[];
}

/** A real dnsmasq on 127.0.0.1, authoritative for `.internal`, for the duration of a test. */
export interface Dnsmasq {
  /** `127.0.0.1:<port>`, for `dnsTargets(..., { servers: [dnsmasq.server] })`. */
  server: string;
  port: number;
  /** Rewrites the hosts file and reloads it (SIGHUP); resolves once dnsmasq has read it. */
  setHosts(hosts: Record<string, string[]>): Promise<void>;
  /** Replaces the SRV records: dnsmasq reads them only at start, so it is restarted on the same port. */
  setSrv(srv: SrvRecord[]): Promise<void>;
  /** Stops answering (the process exits; its port stays unused) until `resume()`. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Kills dnsmasq and removes its files. */
  stop(): Promise<void>;
}

const BINARY = existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq';

/**
 * Starts dnsmasq on a free UDP+TCP port of 127.0.0.1 with no upstream, no /etc/hosts and no config
 * file: only the records given here, answered with TTL `localTtl` seconds. Names under `.internal`
 * that it does not know get NXDOMAIN (or NODATA), not REFUSED, as from a real authoritative server.
 */
export async function startDnsmasq(records: DnsRecords = {}, localTtl = 1): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'pb-dnsmasq-'));
  const hostsFile = join(dir, 'hosts');
  writeHosts(hostsFile, records.hosts ?? {});
  let srv = records.srv ?? [];
  const port = await freePort();
  let child: ChildProcess | undefined;
  let lines: string[] = [];
  let waiters: Array<() => void> = [];

  const args = (): string[] => [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--addn-hosts=${hostsFile}`,
    `--local-ttl=${localTtl}`,
    '--local=/internal/',
    '--pid-file=',
    `--user=${userInfo().username}`,
    ...srv.map((r) => `--srv-host=${r.name},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 0}`),
  ];

  const launch = async (): Promise<void> => {
    lines = [];
    const proc = spawn(BINARY, args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      lines.push(...chunk.split('\n'));
      for (const wake of waiters.splice(0)) wake();
    });
    const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`dnsmasq exited (${code}) at start: ${lines.join(' | ')}`))));
    await Promise.race([answering(port), exited]);
    exited.catch(() => {});
  };

  const kill = (): Promise<void> =>
    new Promise((resolve) => {
      const proc = child;
      child = undefined;
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });

  /** Waits for a stderr line containing `text` that arrives after `from` lines. */
  const logged = async (text: string, from: number): Promise<void> => {
    const end = Date.now() + 5000;
    while (!lines.slice(from).some((l) => l.includes(text))) {
      if (Date.now() > end) throw new Error(`dnsmasq did not log ${JSON.stringify(text)}: ${lines.join(' | ')}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  };

  try {
    await launch();
  } catch (err) {
    await kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    server: `127.0.0.1:${port}`,
    port,
    async setHosts(hosts) {
      writeHosts(hostsFile, hosts);
      const from = lines.length;
      child?.kill('SIGHUP');
      await logged(`read ${hostsFile}`, from);
    },
    async setSrv(next) {
      srv = next;
      await kill();
      await launch();
    },
    pause: kill,
    resume: launch,
    async stop() {
      waiters = [];
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function writeHosts(file: string, hosts: Record<string, string[]>): void {
  const text = Object.entries(hosts)
    .flatMap(([name, addresses]) => addresses.map((a) => `${a} ${name}`))
    .join('\n');
  writeFileSync(file, `${text}\n`);
}

/** A port free on 127.0.0.1 for both TCP and UDP (dnsmasq binds both). */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, '127.0.0.1', () => resolve((tcp.address() as net.AddressInfo).port));
    });
    const udp = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
    if (free) return port;
  }
  throw new Error('no port free for both TCP and UDP');
}

/** Resolves once dnsmasq answers a query (any answer, NXDOMAIN included). */
async function answering(port: number): Promise<void> {
  const resolver = new dns.Resolver({ timeout: 100, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    try {
      await resolver.resolve4('ready.internal');
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === dns.NOTFOUND || code === dns.NODATA) return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`dnsmasq did not answer on port ${port}`);
}
