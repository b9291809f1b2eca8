/**
 * Child process of backpressure.test.ts: a backend and a balancer in front of it, alone in this
 * process so its RSS is theirs. argv[2] is the JSON `PeerConfig`. Prints `{"port": n}` once
 * listening, then reports on stdout as JSON lines:
 * - download: `{"event":"mark"}` is read on stdin when the client pauses, `{"event":"report"}`
 *   when it resumes; the answer to a report gives the memory peaks since the mark and what the
 *   backend had sent by then.
 * - upload: the backend holds the request body for `pauseMs`, then reports the same figures and
 *   reads on.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { loadBalance, responseCache, type LoadBalanceOptions } from 'proxy-balancer';

export interface PeerConfig {
  mode: 'download' | 'upload';
  /** Balancer options: 'plain' (no retry), 'retries', 'cache' (maxEntrySize 1 MiB), 'cache-below' (maxEntrySize above the body), 'compress'. */
  lb: 'plain' | 'retries' | 'cache' | 'cache-below' | 'compress' | 'compress-below';
  /** Body bytes. */
  size: number;
  /** Download: send Content-Length (else chunked). */
  contentLength: boolean;
  /** Upload: how long the backend leaves the body unread. */
  pauseMs: number;
}

export interface PeerReport {
  /** Bytes over the idle RSS of the process, before the request, at the peak since then. */
  rssGrowth: number;
  /** The same for heapUsed + arrayBuffers (JavaScript-held memory). */
  heapGrowth: number;
  /** Body bytes the backend had handed to its socket (download) or read (upload) at the report. */
  backendBytes: number;
  /** Body bytes the backend had sent or read at the mark. */
  backendBytesAtMark: number;
}

const config = JSON.parse(process.argv[2]!) as PeerConfig;

// Text that gzip shrinks only about 2x (hex digits of random bytes, repeating every 8 MiB, far
// beyond gzip's 32 KiB window): kernel socket buffers then hold little of the body, so a stalled
// client must stop the upstream, and gzip has little work to do once it does.
const BODY = config.mode === 'download' ? Buffer.from(randomBytes(4 * 1024 * 1024).toString('hex'), 'latin1') : Buffer.alloc(0);
const CHUNK_SIZE = 64 * 1024;

let backendBytes = 0;
let backendBytesAtMark = 0;
let idleRss = 0;
let idleHeap = 0;
let peakRss = 0;
let peakHeap = 0;

const heap = (): number => {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
};
const sample = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  peakHeap = Math.max(peakHeap, heap());
};
const sampler = setInterval(sample, 5);
sampler.unref();

function report(): void {
  sample();
  const out: PeerReport = { rssGrowth: peakRss - idleRss, heapGrowth: peakHeap - idleHeap, backendBytes, backendBytesAtMark };
  console.log(JSON.stringify({ event: 'report', ...out }));
}

const backend = http.createServer((req, res) => {
  if (config.mode === 'upload') {
    req.pause();
    backendBytesAtMark = 0;
    setTimeout(() => {
      report();
      req.on('data', (chunk: Buffer) => (backendBytes += chunk.length));
      req.on('end', () => res.end(String(backendBytes)));
      req.resume();
    }, config.pauseMs);
    return;
  }
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('cache-control', 'max-age=60');
  if (config.contentLength) res.setHeader('content-length', config.size);
  const pump = (): void => {
    while (backendBytes < config.size) {
      const offset = backendBytes % BODY.length;
      const piece = BODY.subarray(offset, offset + Math.min(CHUNK_SIZE, config.size - backendBytes));
      backendBytes += piece.length;
      if (!res.write(piece)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
  res.on('close', () => res.off('drain', pump));
});

const below = { maxEntrySize: config.size + 1024, maxSize: 2 * config.size };
const variants: Record<PeerConfig['lb'], LoadBalanceOptions> = {
  plain: { retry: false },
  retries: {},
  cache: { cache: responseCache({ maxEntrySize: 1024 * 1024 }) },
  'cache-below': { cache: responseCache(below) },
  compress: { cache: responseCache({ maxEntrySize: 1024 * 1024, compress: true }) },
  'compress-below': { cache: responseCache({ ...below, compress: true }) },
};
const options = variants[config.lb];

backend.listen(0, '127.0.0.1', () => {
  const lb = loadBalance({ targets: [`http://127.0.0.1:${(backend.address() as AddressInfo).port}`], ...options });
  const front = http.createServer(lb);
  front.listen(0, '127.0.0.1', () => {
    // Idle figures once everything is loaded and the start-up garbage is collected; peaks count from here.
    (globalThis as { gc?: () => void }).gc?.();
    idleRss = peakRss = process.memoryUsage.rss();
    idleHeap = peakHeap = heap();
    console.log(JSON.stringify({ port: (front.address() as AddressInfo).port }));
  });
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'mark') backendBytesAtMark = backendBytes;
  else if (line === 'report') report();
  else if (line === 'exit') process.exit(0);
});
