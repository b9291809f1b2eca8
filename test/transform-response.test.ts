import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import express from 'express';
import { loadBalance, responseCache } from 'proxy-balancer';
import { closeAll, listen, cacheOutcome } from './helpers.js';

const HTML = '<html><a href="http://internal:8080/docs">docs</a> <img src="http://internal:8080/logo.png"></html>';

function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('transformResponse', () => {
  test('rewrites HTML links through gzip, br and deflate: decoded for the transform, re-encoded for the client, Content-Length and ETag fixed', async () => {
    const origin = await listen((req, res) => {
      const encoding = req.url!.slice(1);
      const body = encoding === 'gzip' ? zlib.gzipSync(HTML) : encoding === 'br' ? zlib.brotliCompressSync(HTML) : zlib.deflateSync(HTML);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-encoding': encoding, 'content-length': body.length, etag: '"v1"' });
      res.end(body);
    });
    const lb = loadBalance({
      targets: [origin.url],
      transformResponse: (body) => body.toString().replaceAll('http://internal:8080', 'https://example.com'),
    });
    const front = await listen(lb);
    try {
      for (const [encoding, decode] of [
        ['gzip', zlib.gunzipSync],
        ['br', zlib.brotliDecompressSync],
        ['deflate', zlib.inflateSync],
      ] as const) {
        const reply = await get(`${front.url}/${encoding}`, { 'accept-encoding': encoding });
        assert.equal(reply.status, 200);
        assert.equal(reply.headers['content-encoding'], encoding);
        assert.equal(Number(reply.headers['content-length']), reply.body.length);
        assert.equal(reply.headers.etag, 'W/"v1"');
        const text = decode(reply.body).toString();
        assert.equal(text, HTML.replaceAll('http://internal:8080', 'https://example.com'));
      }
      assert.deepEqual(lb.stats().transforms, { transformed: 3, tooLarge: 0, failed: 0 });
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });

  test('removes a JSON field in Express 5; other content types stream untouched', async () => {
    const origin = await listen((req, res) => {
      if (req.url === '/user') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name: 'ada', passwordHash: 'secret' }));
        return;
      }
      res.setHeader('content-type', 'text/plain');
      res.end('plain passwordHash stays');
    });
    const lb = loadBalance({
      targets: [origin.url],
      transformResponse: {
        types: ['application/json'],
        transform: (body) => {
          const { passwordHash: _drop, ...rest } = JSON.parse(body.toString());
          return JSON.stringify(rest);
        },
      },
    });
    const app = express();
    app.use('/api', lb);
    const front = await listen(app);
    try {
      const user = await get(`${front.url}/api/user`);
      assert.deepEqual(JSON.parse(user.body.toString()), { name: 'ada' });
      assert.equal(Number(user.headers['content-length']), user.body.length);
      const plain = await get(`${front.url}/api/plain`);
      assert.equal(plain.body.toString(), 'plain passwordHash stays');
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });

  test('a transform that throws answers 502 (never the untransformed body)', async () => {
    const origin = await listen((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end('<secret>');
    });
    const lb = loadBalance({
      targets: [origin.url],
      transformResponse: () => {
        throw new Error('bug');
      },
    });
    const front = await listen(lb);
    try {
      const reply = await get(front.url);
      assert.equal(reply.status, 502);
      assert.equal(reply.body.toString(), 'Bad Gateway\n');
      assert.equal(lb.stats().transforms?.failed, 1);
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });

  test('a matching body over maxBytes passes through unchanged and is counted, with or without Content-Length', async () => {
    const big = 'x'.repeat(300_000);
    const origin = await listen((req, res) => {
      res.setHeader('content-type', 'text/html');
      if (req.url === '/declared') res.setHeader('content-length', big.length);
      res.write(big.slice(0, 100_000));
      setTimeout(() => res.end(big.slice(100_000)), 20);
    });
    const lb = loadBalance({ targets: [origin.url], transformResponse: { transform: () => 'changed', maxBytes: 64 * 1024 } });
    const front = await listen(lb);
    try {
      for (const path of ['/declared', '/chunked']) {
        const reply = await get(`${front.url}${path}`);
        assert.equal(reply.status, 200);
        assert.equal(reply.body.length, big.length);
        assert.equal(reply.body.toString(), big);
      }
      assert.deepEqual(lb.stats().transforms, { transformed: 0, tooLarge: 2, failed: 0 });
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });

  test('the cache stores the transformed body', async () => {
    const origin = await listen((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.setHeader('cache-control', 'max-age=60');
      res.end('<p>original</p>');
    });
    const lb = loadBalance({ targets: [origin.url], cache: responseCache(), transformResponse: (body) => body.toString().replace('original', 'transformed') });
    const front = await listen(lb);
    try {
      const miss = await get(front.url);
      const hit = await get(front.url);
      assert.equal(cacheOutcome(miss.headers), 'MISS');
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.equal(hit.body.toString(), '<p>transformed</p>');
      assert.equal(origin.hits, 1);
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });

  test('a 50 MB binary passes through unbuffered: the client has its first bytes before the origin has sent the rest, and a paused client stops the origin', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    let originDone = 0;
    const origin = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 50 * chunk.length });
      const pump = (): void => {
        while (sent < 50) {
          sent++;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end(() => (originDone = performance.now()));
      };
      pump();
    });
    const lb = loadBalance({ targets: [origin.url], transformResponse: { types: ['text/*', 'application/json'], transform: () => 'never' } });
    const front = await listen(lb);
    try {
      let firstByte = 0;
      let received = 0;
      let sentWhilePaused = 0;
      await new Promise<void>((resolve, reject) => {
        http.get(front.url, { agent: false }, (res) => {
          res.on('data', (c: Buffer) => {
            if (received === 0) {
              firstByte = performance.now();
              // A body held for a transform would be all in memory by now; a streamed one stops the origin.
              res.pause();
              setTimeout(() => {
                sentWhilePaused = sent;
                res.resume();
              }, 300);
            }
            received += c.length;
          });
          res.on('end', resolve);
          res.on('error', reject);
        });
      });
      assert.equal(received, 50 * chunk.length);
      assert.ok(firstByte < originDone, 'the first bytes arrived before the origin had sent its last');
      assert.ok(sentWhilePaused < 25, `the origin had written ${sentWhilePaused} of 50 MB while the client paused`);
      assert.deepEqual(lb.stats().transforms, { transformed: 0, tooLarge: 0, failed: 0 });
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });
});
