import { fork } from 'node:child_process';
import http from 'node:http';
import http2, { type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { loadBalance } from 'proxy-balancer';

// Heap per open request through each engine: `tsx test/bench/h2-stream-memory.ts [count]` holds
// `count` (default 1000) long-poll requests open through a balancer in a child process (HTTP/1.1
// clients in front; an HTTP/1.1 target, then an h2c one) and reports the balancer's heap growth
// per request after a full GC, and its RSS growth.

interface Sample {
  heapUsed: number;
  rss: number;
}

const CHILD = process.argv[2] === '--child';

if (CHILD) {
  const target = process.argv[3]!;
  const lb = loadBalance({ targets: [target], proxyTimeout: 0, retry: false, outlierDetection: false });
  const server = http.createServer(lb);
  server.maxConnections = 100_000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', (message: string) => {
    if (message === 'sample') {
      for (let i = 0; i < 3; i++) globalThis.gc!();
      const { heapUsed, rss } = process.memoryUsage();
      process.send!({ heapUsed, rss });
    } else if (message === 'exit') {
      server.close();
      void lb.close().then(() => process.exit(0));
    }
  });
} else {
  const count = Number(process.argv[2] ?? 1000);
  const results: string[] = [];
  for (const kind of ['http/1.1', 'h2c'] as const) {
    const held: Array<() => void> = [];
    const upstream =
      kind === 'h2c'
        ? http2.createServer({ settings: { maxConcurrentStreams: 1000 } }).on('stream', (stream: ServerHttp2Stream) => {
            stream.on('error', () => {});
            held.push(() => {
              stream.respond({ ':status': 200 });
              stream.end('done');
            });
          })
        : http.createServer((_req, res) => held.push(() => res.end('done')));
    upstream.maxConnections = 100_000;
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    const child = fork(fileURLToPath(import.meta.url), ['--child', kind === 'h2c' ? `h2c://127.0.0.1:${port}` : `http://127.0.0.1:${port}`], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
    });
    const reply = <T>(): Promise<T> => new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
    const { port: front } = await reply<{ port: number }>();
    const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    // Warm up: code paths compiled, sessions or sockets in place.
    const warm = Array.from({ length: 50 }, () => get(front, agent));
    while (held.length < 50) await new Promise((resolve) => setTimeout(resolve, 20));
    releaseAll(held);
    await Promise.all(warm);
    child.send('sample');
    const before = await reply<Sample>();
    const open = Array.from({ length: count }, () => get(front, agent));
    while (held.length < count) await new Promise((resolve) => setTimeout(resolve, 20));
    child.send('sample');
    const during = await reply<Sample>();
    releaseAll(held);
    await Promise.all(open);
    child.send('exit');
    agent.destroy();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    const perRequest = (during.heapUsed - before.heapUsed) / count;
    results.push(
      `${kind.padEnd(8)} target: ${count} open requests, balancer heap +${mb(during.heapUsed - before.heapUsed)} MB (${(perRequest / 1024).toFixed(1)} KiB each), RSS +${mb(during.rss - before.rss)} MB`,
    );
  }
  console.log(results.join('\n'));
  process.exit(0);
}

function get(port: number, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/poll', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      })
      .on('error', reject);
  });
}

function releaseAll(held: Array<() => void>): void {
  for (const release of held.splice(0)) release();
}

function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
