import http from 'node:http';
import { listen, type Listening } from './backends.js';
import { spawnServer } from './harness.js';

export const GiB = 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 'm');

export interface MemoryRow {
  direction: 'response' | 'upload';
  bytes: number;
  /** RSS of the proxy process just before the transfer. */
  rssBefore: number;
  /** Highest RSS sampled (every 5 ms) during the transfer. */
  rssPeak: number;
  growth: number;
  /** Megabytes (2^20) per second through the proxy. */
  mbPerSecond: number;
}

/** A backend that streams `?size=` bytes on GET and counts what it is sent on POST. */
function bulkBackend(): Promise<Listening> {
  return listen(
    http.createServer((req, res) => {
      if (req.method === 'POST') {
        let received = 0;
        req.on('data', (chunk: Buffer) => (received += chunk.length));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ received }));
        });
        return;
      }
      const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      let left = size;
      const pump = (): void => {
        while (left > 0) {
          const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
          left -= chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    }),
  );
}

function download(url: string, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/big?size=${size}`, { agent: false }, (res) => {
        let received = 0;
        res.on('data', (chunk: Buffer) => (received += chunk.length));
        res.on('end', () =>
          res.statusCode === 200 && received === size ? resolve() : reject(new Error(`download: status ${res.statusCode}, ${received} of ${size} bytes`)),
        );
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function upload(url: string, size: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/upload`,
      { method: 'POST', agent: false, headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const received = res.statusCode === 200 ? (JSON.parse(text) as { received: number }).received : -1;
          if (received === size) resolve();
          else reject(new Error(`upload: status ${res.statusCode}, backend received ${received} of ${size} bytes`));
        });
      },
    );
    req.on('error', reject);
    let left = size;
    const pump = (): void => {
      while (left > 0) {
        const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
        left -= chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/**
 * Streams a `size`-byte response and a `size`-byte upload through the library on bare node:http
 * (a fresh child process, pinned to `cpu`) and reports the growth of its RSS. A 32 MiB transfer each
 * way first lets JIT code and buffers settle, so what is measured is what the big transfer adds.
 */
export async function memoryBench(size: number = GiB, cpu?: number): Promise<MemoryRow[]> {
  const backend = await bulkBackend();
  const proxy = await spawnServer('lib-bare', [backend.url], { cpu });
  try {
    const warmup = Math.min(size, 32 * 1024 * 1024);
    await download(proxy.url, warmup);
    await upload(proxy.url, warmup);
    const rows: MemoryRow[] = [];
    for (const direction of ['response', 'upload'] as const) {
      const before = await proxy.watch();
      const began = process.hrtime.bigint();
      await (direction === 'response' ? download : upload)(proxy.url, size);
      const seconds = Number(process.hrtime.bigint() - began) / 1e9;
      const after = await proxy.peak();
      rows.push({
        direction,
        bytes: size,
        rssBefore: before.rss,
        rssPeak: after.peakRss,
        growth: Math.max(0, after.peakRss - before.rss),
        mbPerSecond: size / 2 ** 20 / seconds,
      });
    }
    return rows;
  } finally {
    await proxy.close();
    await backend.close();
  }
}
