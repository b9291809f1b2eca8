import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { loadBalance, type LoadBalanceOptions, responseCache } from 'proxy-balancer';
import { closeAll, listen, type TestServer } from './helpers.js';

const EVENT_GAP = 300;
const LONG_POLL = 500;

// Each configuration a stream must pass through without being held.
const configurations: Record<string, () => Omit<LoadBalanceOptions, 'targets'>> = {
  plain: () => ({}),
  cache: () => ({ cache: responseCache() }),
  'cache with compress': () => ({ cache: responseCache({ compress: { minSize: 0 } }) }),
  transformResponse: () => ({ transformResponse: { types: ['text/*', 'application/json'], transform: (body) => body } }),
};

interface Timing {
  head: number;
  first: number;
  /** When the backend wrote its second event (or the long poll's body), on the same clock. */
  secondSent: number;
  end: number;
  body: string;
  encoding: string | undefined;
}

describe('server-sent events and long polls pass unbuffered', () => {
  let backend: TestServer;
  const sentAt = new Map<string, number>();
  before(async () => {
    backend = await listen((req, res) => {
      const id = req.headers['x-id'] as string;
      if (req.url?.startsWith('/events')) {
        // An event stream that claims to be cacheable, as some do: the cache must still not hold it.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': req.url.includes('cacheable') ? 'max-age=60' : 'no-cache' });
        res.flushHeaders();
        res.write('data: 1\n\n');
        const second = setTimeout(() => {
          sentAt.set(id, performance.now());
          res.write('data: 2\n\n');
          const third = setTimeout(() => res.end('data: 3\n\n'), EVENT_GAP);
          res.on('close', () => clearTimeout(third));
        }, EVENT_GAP);
        res.on('close', () => clearTimeout(second));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      const body = setTimeout(() => {
        sentAt.set(id, performance.now());
        res.end(JSON.stringify({ message: 'x'.repeat(2000) }));
      }, LONG_POLL);
      res.on('close', () => clearTimeout(body));
    });
  });
  after(() => closeAll(backend));

  let ids = 0;
  /** A real client: when the head, the first body bytes (decoded) and the end arrive, in ms from the request. */
  function timed(url: string, marker: string): Promise<Timing> {
    const id = String(++ids);
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const req = http.get(url, { agent: false, headers: { 'accept-encoding': 'br, gzip', 'x-id': id } }, (res: IncomingMessage) => {
        const head = performance.now() - start;
        const encoding = res.headers['content-encoding'];
        const decoded: Readable =
          encoding === 'br'
            ? res.pipe(zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH }))
            : encoding === 'gzip'
              ? res.pipe(zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH }))
              : res;
        let body = '';
        let first = Number.NaN;
        decoded.on('data', (chunk: Buffer) => {
          body += chunk.toString();
          if (Number.isNaN(first) && body.includes(marker)) first = performance.now() - start;
        });
        decoded.on('end', () => resolve({ head, first, secondSent: (sentAt.get(id) ?? Number.NaN) - start, end: performance.now() - start, body, encoding }));
        decoded.on('error', reject);
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  }

  for (const [name, options] of Object.entries(configurations)) {
    test(`an event stream through ${name}: the first event arrives well before the second is sent`, async () => {
      const lb = loadBalance({ targets: [backend.url], ...options() });
      const front = await listen(lb);
      try {
        for (const path of ['/events', '/events/cacheable']) {
          // Two clients at once: a cache must not make the second wait for the first stream to end.
          const [one, two] = await Promise.all([timed(`${front.url}${path}`, 'data: 1'), timed(`${front.url}${path}`, 'data: 1')]);
          for (const t of [one!, two!]) {
            console.log(`# ${name} ${path}: head ${t.head.toFixed(1)} ms, first event ${t.first.toFixed(1)} ms, second sent ${t.secondSent.toFixed(1)} ms`);
            assert.equal(t.body, 'data: 1\n\ndata: 2\n\ndata: 3\n\n');
            assert.ok(t.first < t.secondSent - EVENT_GAP / 2, `first event at ${t.first} ms, second sent at ${t.secondSent} ms`);
            assert.equal(t.encoding, undefined, 'events are not compressed');
          }
        }
      } finally {
        await lb.close();
        await front.close();
      }
    });

    test(`a long poll through ${name}: the body arrives as soon as it is sent`, async () => {
      const lb = loadBalance({ targets: [backend.url], ...options() });
      const front = await listen(lb);
      try {
        const t = await timed(`${front.url}/poll`, '"message"');
        console.log(`# ${name} long poll: head ${t.head.toFixed(1)} ms, body ${t.first.toFixed(1)} ms, body sent ${t.secondSent.toFixed(1)} ms`);
        assert.equal(JSON.parse(t.body).message.length, 2000);
        if (name === 'cache with compress') assert.equal(t.encoding, 'br', 'a long poll is still compressed');
        assert.ok(t.first - t.secondSent < 150, `body sent at ${t.secondSent} ms, arrived at ${t.first} ms`);
        // A transformed body is held by definition, and its head (with the new Content-Length) goes with it.
        if (name !== 'transformResponse') assert.ok(t.head < LONG_POLL - 200, `head at ${t.head} ms`);
      } finally {
        await lb.close();
        await front.close();
      }
    });
  }
});
