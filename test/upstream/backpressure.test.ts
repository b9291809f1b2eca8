import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { responseCache } from 'proxy-balancer';
import { delay, listen } from '../helpers.js';
import type { PeerConfig, PeerReport } from './backpressure-peer.js';

const PEER = fileURLToPath(new URL('./backpressure-peer.ts', import.meta.url));
const MB = 1024 * 1024;
const SIZE = 200 * MB;
const PAUSE_MS = 3000;
/**
 * The bound on the balancer process's memory growth while its client (or, for uploads, its
 * upstream) stalls. The stream high-water marks in play are 16 KiB each (upstream socket,
 * IncomingMessage, ServerResponse, zlib's two sides: under 1 MiB even doubled); what the cache
 * keeps is at most maxEntrySize (1 MiB) when the body is larger, and when the body fits, only what
 * was relayed before the stall (what kernel socket buffers took: a few MiB). 48 MiB covers that
 * plus 32 MiB of slack for the heap and allocator. A body buffered whole would be 200 MiB.
 */
const BOUND = 48 * MB;

interface Peer {
  child: ChildProcess;
  port: number;
  next(): Promise<Record<string, unknown>>;
  send(line: string): void;
  stop(): Promise<void>;
}

async function startPeer(config: PeerConfig): Promise<Peer> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', PEER, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done) throw new Error('the balancer process exited');
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  const { port } = (await next()) as { port: number };
  return {
    child,
    port,
    next,
    send: (line) => child.stdin!.write(`${line}\n`),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    },
  };
}

const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;

/**
 * GETs the body through the balancer, reads its first 64 KiB, stops reading for PAUSE_MS, then
 * reads on until 1 MiB more (or the end) arrived, to show the flow resumes.
 */
async function stalledDownload(config: PeerConfig, acceptEncoding?: string): Promise<{ report: PeerReport; head: string }> {
  const peer = await startPeer(config);
  try {
    const socket = net.connect(peer.port, '127.0.0.1');
    socket.on('error', () => {});
    let received = 0;
    let head = '';
    let ended = false;
    socket.on('end', () => (ended = true));
    const reached = (bytes: number, ms: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${mb(received)} received`)), ms);
        const check = (): void => {
          if (received < bytes && !ended) return;
          clearTimeout(timer);
          socket.off('data', check);
          socket.off('end', check);
          resolve();
        };
        socket.on('data', check);
        socket.on('end', check);
        check();
      });
    socket.on('data', (chunk: Buffer) => {
      if (received === 0) head = chunk.toString('latin1').split('\r\n\r\n')[0]!;
      received += chunk.length;
    });
    socket.write(`GET /big HTTP/1.1\r\nHost: test.local\r\n${acceptEncoding ? `Accept-Encoding: ${acceptEncoding}\r\n` : ''}\r\n`);
    await reached(64 * 1024, 20_000);
    socket.pause();
    peer.send('mark');
    await delay(PAUSE_MS);
    peer.send('report');
    const report = (await peer.next()) as unknown as PeerReport;
    const before = received;
    socket.resume();
    await reached(before + MB, 30_000);
    assert.ok(received > before, 'the response flows again once the client reads');
    socket.destroy();
    return { report, head };
  } finally {
    await peer.stop();
  }
}

/** PUTs SIZE bytes through the balancer to a backend that leaves them unread for PAUSE_MS; the upload must stall, then complete. */
async function stalledUpload(config: PeerConfig): Promise<{ report: PeerReport; accepted: number }> {
  const peer = await startPeer(config);
  try {
    const socket = net.connect(peer.port, '127.0.0.1');
    socket.on('error', () => {});
    let reply = '';
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`PUT /upload HTTP/1.1\r\nHost: test.local\r\nContent-Type: application/octet-stream\r\nContent-Length: ${SIZE}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 'u');
    let written = 0;
    const accepted = (): number => socket.bytesWritten - socket.writableLength;
    const uploading = (async () => {
      while (written < SIZE && !socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
      }
    })();
    const report = (await peer.next()) as unknown as PeerReport;
    const acceptedAtReport = accepted();
    await uploading;
    const end = Date.now() + 30_000;
    while (!/\r\n\r\n\d+$/.test(reply) && Date.now() < end && !socket.destroyed) await delay(20);
    socket.destroy();
    await closed;
    assert.match(reply, /^HTTP\/1\.1 200 /);
    assert.equal(reply.split('\r\n\r\n')[1], String(SIZE), 'the whole upload arrived once the backend read again');
    return { report, accepted: acceptedAtReport };
  } finally {
    await peer.stop();
  }
}

function assertBounded(what: string, report: PeerReport): void {
  const figures = `${what}: RSS +${mb(report.rssGrowth)}, heap+buffers +${mb(report.heapGrowth)}, backend ${mb(report.backendBytesAtMark)} at the stall, ${mb(report.backendBytes)} after it`;
  console.log(`# ${figures}`);
  assert.ok(report.rssGrowth < BOUND, `${figures}: RSS growth over ${mb(BOUND)}`);
  assert.ok(report.heapGrowth < BOUND, `${figures}: heap growth over ${mb(BOUND)}`);
}

describe('backpressure: a stalled client stops the upstream, whatever touches the body', { concurrency: 4 }, () => {
  const downloads: Array<[string, PeerConfig['lb'], boolean, string | undefined]> = [
    ['plain (retries off)', 'plain', true, undefined],
    ['retries on', 'retries', true, undefined],
    ['cache on, storable body above maxEntrySize (Content-Length)', 'cache', true, undefined],
    ['cache on, storable body above maxEntrySize (chunked, found out while keeping)', 'cache', false, undefined],
    ['cache on, storable body below maxEntrySize', 'cache-below', true, undefined],
    ['compress on (gzip)', 'compress', true, 'gzip'],
    ['compress on (gzip), chunked from the upstream', 'compress', false, 'gzip'],
    ['compress on (gzip) and a storable body below maxEntrySize', 'compress-below', true, 'gzip'],
  ];
  for (const [what, lb, contentLength, encoding] of downloads) {
    test(`a ${SIZE / MB} MB download to a client that stops reading for ${PAUSE_MS / 1000} s: ${what}`, async () => {
      const { report, head } = await stalledDownload({ mode: 'download', lb, size: SIZE, contentLength, pauseMs: PAUSE_MS }, encoding);
      assert.match(head, /^HTTP\/1\.1 200 /);
      if (lb !== 'plain' && lb !== 'retries') assert.match(head, /\r\ncache-status: proxy-balancer; fwd=uri-miss[^\r]*(\r\n|$)/i);
      if (encoding !== undefined) assert.match(head, new RegExp(`\\r\\ncontent-encoding: ${encoding}(\\r\\n|$)`, 'i'));
      assertBounded(what, report);
      // The upstream stopped too: it did not get to send the rest of the body while the client stalled.
      assert.ok(report.backendBytes < SIZE / 2, `the backend sent ${mb(report.backendBytes)} of ${mb(SIZE)} while the client read nothing`);
    });
  }

  for (const [what, lb] of [
    ['retries on (the body is recorded for replay up to maxBodyBytes)', 'retries'],
    ['retries off', 'plain'],
    ['cache on', 'cache'],
  ] as const) {
    test(`a ${SIZE / MB} MB upload to a backend that stops reading for ${PAUSE_MS / 1000} s: ${what}`, async () => {
      const { report, accepted } = await stalledUpload({ mode: 'upload', lb, size: SIZE, contentLength: true, pauseMs: PAUSE_MS });
      assertBounded(`upload, ${what}`, report);
      console.log(`# upload, ${what}: the client got ${mb(accepted)} out while the backend read nothing`);
      assert.ok(accepted < SIZE / 2, `the balancer took ${mb(accepted)} of the upload while its upstream read nothing`);
    });
  }
});

describe("backpressure through the cache's capture, for any handler", () => {
  test('a handler behind responseCache({ compress }) sees write() return false and drain, and the client gets the whole body intact', async () => {
    const body = Buffer.from(randomBytes(8 * MB).toString('hex'), 'latin1');
    let written = 0;
    const handler = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      res.setHeader('content-type', 'text/plain');
      res.setHeader('cache-control', 'max-age=60');
      const pump = (): void => {
        while (written < body.length) {
          const piece = body.subarray(written, written + 64 * 1024);
          written += piece.length;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    };
    const cache = responseCache({ compress: true, maxEntrySize: 64 * 1024 });
    const server = await listen(cache.wrap(handler));
    try {
      const got = await new Promise<Buffer>((resolve, reject) => {
        http
          .get(`${server.url}/any`, { agent: false, headers: { 'accept-encoding': 'gzip' } }, (res) => {
            assert.equal(res.headers['content-encoding'], 'gzip');
            res.pause();
            setTimeout(() => {
              // 16 MiB of body, about 8 MiB gzipped: a producer that ignored backpressure would be done by now.
              if (written >= body.length) {
                res.destroy();
                reject(new Error(`the handler wrote all ${mb(written)} while the client read nothing`));
                return;
              }
              const chunks: Buffer[] = [];
              const gunzip = res.pipe(zlib.createGunzip());
              gunzip.on('data', (c: Buffer) => chunks.push(c));
              gunzip.on('end', () => resolve(Buffer.concat(chunks)));
              gunzip.on('error', reject);
            }, 1000);
          })
          .on('error', reject);
      });
      assert.equal(got.length, body.length);
      assert.ok(got.equals(body), 'the decompressed body is the one written');
    } finally {
      await server.close();
    }
  });
});
