import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { loadBalance, responseCache, type LoadBalancer } from 'proxy-balancer';
import { closeAll, delay, listen, request, waitFor, type TestServer, cacheOutcome } from './helpers.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

/** One backend with a route per path, counting requests per path. */
describe('response cache (RFC 9111) in front of the balancer', () => {
  const routes = new Map<string, Route>();
  const hits = new Map<string, number>();
  let origin: TestServer;
  let lb: LoadBalancer;
  let front: TestServer;
  let version = 0;

  const route = (path: string, handler: Route): string => {
    routes.set(path, handler);
    return path;
  };
  const count = (path: string): number => hits.get(path) ?? 0;
  const get = (path: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET') => request(`${front.url}${path}`, { headers, method });

  before(async () => {
    origin = await listen((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      hits.set(path, count(path) + 1);
      const handler = routes.get(path);
      if (handler === undefined) {
        res.statusCode = 404;
        res.end('no route');
        return;
      }
      handler(req, res);
    });
    lb = loadBalance({ targets: [origin.url], cache: responseCache({ maxSize: 1024 * 1024, maxEntrySize: 64 * 1024 }) });
    front = await listen(lb);
  });
  after(async () => {
    await lb.close();
    await closeAll(front, origin);
  });

  test('a fresh response is served from memory with Age and X-Cache: HIT', async () => {
    const path = route('/fresh', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end(`v${++version}`);
    });
    const first = await get(path);
    assert.equal(cacheOutcome(first.headers), 'MISS');
    await delay(1100);
    const second = await get(path);
    assert.equal(cacheOutcome(second.headers), 'HIT');
    assert.equal(second.body, first.body);
    assert.ok(['1', '2'].includes(String(second.headers.age)), `Age ${second.headers.age} after 1.1 s (Date has 1 s resolution)`);
    assert.equal(count(path), 1, 'the backend was asked once');
    const head = await get(path, {}, 'HEAD');
    assert.equal(cacheOutcome(head.headers), 'HIT', 'HEAD is served from the cached GET');
    assert.equal(head.body, '');
    assert.equal(count(path), 1);
  });

  test('s-maxage wins over max-age; Expires works without Cache-Control', async () => {
    const shared = route('/s-maxage', (_req, res) => {
      res.setHeader('cache-control', 'max-age=0, s-maxage=60');
      res.end('shared');
    });
    await get(shared);
    assert.equal(cacheOutcome((await get(shared)).headers), 'HIT');
    const expires = route('/expires', (_req, res) => {
      res.setHeader('expires', new Date(Date.now() + 60_000).toUTCString());
      res.end('expires');
    });
    await get(expires);
    assert.equal(cacheOutcome((await get(expires)).headers), 'HIT');
    assert.equal(count(shared) + count(expires), 2);
  });

  for (const [name, headers, reqHeaders] of [
    ['no-store', { 'cache-control': 'no-store, max-age=60' }, {}],
    ['private', { 'cache-control': 'private, max-age=60' }, {}],
    ['Set-Cookie', { 'cache-control': 'max-age=60', 'set-cookie': 'sid=1' }, {}],
    ['Authorization without public', { 'cache-control': 'max-age=60' }, { authorization: 'Bearer x' }],
    ['Vary: *', { 'cache-control': 'max-age=60', vary: '*' }, {}],
    ['no explicit freshness on a 302', {}, {}],
  ] as const) {
    test(`a response with ${name} is fetched every time`, async () => {
      const path = route(`/never-${name.replace(/\W+/g, '-')}`, (_req, res) => {
        if (name.endsWith('302')) res.statusCode = 302;
        for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        res.end('x');
      });
      await get(path, reqHeaders);
      const second = await get(path, reqHeaders);
      assert.equal(cacheOutcome(second.headers), 'MISS');
      assert.equal(count(path), 2);
    });
  }

  test('Authorization is cached when the response says public', async () => {
    const path = route('/auth-public', (_req, res) => {
      res.setHeader('cache-control', 'public, max-age=60');
      res.end('ok');
    });
    await get(path, { authorization: 'Bearer x' });
    assert.equal(cacheOutcome((await get(path, { authorization: 'Bearer x' })).headers), 'HIT');
    assert.equal(count(path), 1);
  });

  test('heuristic freshness from Last-Modified (10% of its age)', async () => {
    const path = route('/heuristic', (_req, res) => {
      res.setHeader('last-modified', new Date(Date.now() - 3600_000).toUTCString());
      res.end('old');
    });
    await get(path);
    assert.equal(cacheOutcome((await get(path)).headers), 'HIT');
    assert.equal(count(path), 1);
  });

  test('no-cache forces revalidation; a 304 refreshes the entry and the client gets the full 200', async () => {
    const path = route('/no-cache', (req, res) => {
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('etag', '"v1"');
      if (req.headers['if-none-match'] === '"v1"') {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.end('body v1');
    });
    await get(path);
    const second = await get(path);
    assert.equal(second.status, 200);
    assert.equal(second.body, 'body v1');
    assert.equal(cacheOutcome(second.headers), 'REVALIDATED');
    assert.equal(count(path), 2, 'revalidated upstream each time');
    const conditional = await get(path, { 'if-none-match': '"v1"' });
    assert.equal(conditional.status, 304, 'a client with a matching validator gets 304');
  });

  test('a stale entry with Last-Modified is revalidated with If-Modified-Since', async () => {
    const modified = new Date(Date.now() - 60_000).toUTCString();
    let sawIms: string | undefined;
    const path = route('/ims', (req, res) => {
      sawIms = req.headers['if-modified-since'];
      res.setHeader('cache-control', 'max-age=1');
      res.setHeader('last-modified', modified);
      if (sawIms === modified) {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.end('ims body');
    });
    await get(path);
    await delay(1100);
    const again = await get(path);
    assert.equal(sawIms, modified);
    assert.equal(again.body, 'ims body');
    assert.equal(cacheOutcome(again.headers), 'REVALIDATED');
  });

  test('Vary: a separate variant per request header value', async () => {
    const path = route('/vary', (req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('vary', 'Accept-Language');
      res.end(`lang=${req.headers['accept-language']}`);
    });
    assert.equal((await get(path, { 'accept-language': 'en' })).body, 'lang=en');
    assert.equal((await get(path, { 'accept-language': 'fr' })).body, 'lang=fr');
    const en = await get(path, { 'accept-language': 'en' });
    const fr = await get(path, { 'accept-language': 'fr' });
    assert.equal(en.body, 'lang=en');
    assert.equal(fr.body, 'lang=fr');
    assert.equal(cacheOutcome(en.headers), 'HIT');
    assert.equal(cacheOutcome(fr.headers), 'HIT');
    assert.equal(count(path), 2);
  });

  test('stale-while-revalidate serves stale at once and refreshes in the background once', async () => {
    let n = 0;
    const path = route('/swr', (_req, res) => {
      res.setHeader('cache-control', 'max-age=1, stale-while-revalidate=30');
      setTimeout(() => res.end(`swr${++n}`), 50);
    });
    assert.equal((await get(path)).body, 'swr1');
    await delay(1100);
    const storedBefore = lb.stats().cache!.stored;
    const [a, b] = await Promise.all([get(path), get(path)]);
    assert.equal(cacheOutcome(a.headers), 'STALE');
    assert.equal(cacheOutcome(b.headers), 'STALE');
    assert.equal(a.body, 'swr1');
    await waitFor(() => lb.stats().cache!.stored > storedBefore, 5000);
    assert.equal(count(path), 2, 'one background refresh for both');
    const fresh = await get(path);
    assert.equal(fresh.body, 'swr2');
    assert.equal(cacheOutcome(fresh.headers), 'HIT');
  });

  test('stale-if-error serves the stale body when the backend fails', async () => {
    let broken = false;
    const path = route('/sie', (_req, res) => {
      if (broken) {
        res.statusCode = 500;
        res.end('boom');
        return;
      }
      res.setHeader('cache-control', 'max-age=1, stale-if-error=60');
      res.end('good body');
    });
    await get(path);
    await delay(1100);
    broken = true;
    const reply = await get(path);
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'good body');
    assert.equal(cacheOutcome(reply.headers), 'STALE');
  });

  test('two concurrent misses hit the backend once', async () => {
    const path = route('/coalesce', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      setTimeout(() => res.end('slow'), 100);
    });
    const replies = await Promise.all([get(path), get(path), get(path)]);
    assert.deepEqual(
      replies.map((r) => r.body),
      ['slow', 'slow', 'slow'],
    );
    assert.equal(count(path), 1);
    assert.equal(replies.filter((r) => cacheOutcome(r.headers) === 'HIT').length, 2);
  });

  test('unsafe methods invalidate the URL and its Location', async () => {
    const item = route('/items/1', (req, res) => {
      if (req.method === 'POST') {
        res.setHeader('location', '/items/2');
        res.statusCode = 201;
        res.end('created');
        return;
      }
      res.setHeader('cache-control', 'max-age=60');
      res.end(`item ${count('/items/1')}`);
    });
    const other = route('/items/2', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end('two');
    });
    await get(item);
    await get(other);
    assert.equal(cacheOutcome((await get(item)).headers), 'HIT');
    const post = await get(item, {}, 'POST');
    assert.equal(cacheOutcome(post.headers), 'BYPASS');
    assert.equal(cacheOutcome((await get(item)).headers), 'MISS', 'the URL was invalidated');
    assert.equal(cacheOutcome((await get(other)).headers), 'MISS', 'so was its Location');
  });

  test('a body larger than maxEntrySize streams through and is not stored', async () => {
    const big = Buffer.alloc(200 * 1024, 'b');
    const path = route('/big', (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end(big);
    });
    const first = await get(path);
    assert.equal(first.body.length, big.length);
    const second = await get(path);
    assert.equal(cacheOutcome(second.headers), 'MISS');
    assert.equal(count(path), 2);
  });

  test('X-Forwarded-Host cannot poison the entry other clients get', async () => {
    const path = route('/poison', (req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end(`link to ${req.headers['x-forwarded-host']}`);
    });
    const evil = await get(path, { 'x-forwarded-host': 'evil.example' });
    const victim = await get(path);
    assert.doesNotMatch(evil.body, /evil/, 'the balancer replaced the untrusted header');
    assert.doesNotMatch(victim.body, /evil/);
  });

  test('purge(url) and purge({ prefix }) remove entries', async () => {
    const a = route('/purge/a', (_req, res) => (res.setHeader('cache-control', 'max-age=60'), res.end('a')));
    const b = route('/purge/b', (_req, res) => (res.setHeader('cache-control', 'max-age=60'), res.end('b')));
    await get(a);
    await get(b);
    const host = `127.0.0.1:${front.port}`;
    await lb.cache!.purge(`http://${host}/purge/a`);
    assert.equal(cacheOutcome((await get(a)).headers), 'MISS');
    assert.equal(cacheOutcome((await get(b)).headers), 'HIT');
    await lb.cache!.purge({ prefix: `http://${host}/purge/` });
    assert.equal(cacheOutcome((await get(b)).headers), 'MISS');
  });

  test('only-if-cached answers 504 on a miss; request no-store bypasses', async () => {
    const path = route('/oic', (_req, res) => (res.setHeader('cache-control', 'max-age=60'), res.end('x')));
    assert.equal((await get(path, { 'cache-control': 'only-if-cached' })).status, 504);
    assert.equal(count(path), 0);
    assert.equal(cacheOutcome((await get(path, { 'cache-control': 'no-store' })).headers), 'BYPASS');
  });

  test('cache counters appear in lb.stats()', () => {
    assert.equal(lb.stats().inFlight, 0, 'every exchange, background ones included, ended');
    const stats = lb.stats().cache!;
    assert.ok(stats.hits > 5);
    assert.ok(stats.misses > 5);
    assert.ok(stats.stored > 5);
    assert.ok(stats.coalesced >= 2);
    assert.ok(stats.revalidated >= 2);
    assert.ok(stats.stale >= 3);
  });
});

describe('stale-if-error with every backend down', () => {
  test('the stale body is served while all backends are down', async () => {
    const origin = await listen((_req, res) => {
      res.setHeader('cache-control', 'max-age=1, stale-if-error=60');
      res.end('last known good');
    });
    const lb = loadBalance({ targets: [origin.url], cache: responseCache() });
    const front = await listen(lb);
    try {
      assert.equal((await request(`${front.url}/page`)).body, 'last known good');
      await origin.close();
      await delay(1100);
      const reply = await request(`${front.url}/page`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'last known good');
      assert.equal(cacheOutcome(reply.headers), 'STALE');
      assert.equal((await request(`${front.url}/other`)).status, 502, 'without a stale entry the failure shows');
    } finally {
      await lb.close();
      await front.close();
    }
  });
});

describe('headers the app sets per request', () => {
  test('are not stored with the response: each hit carries its own', async () => {
    const origin = await listen((_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.setHeader('x-upstream', 'kept');
      res.end('body');
    });
    const lb = loadBalance({ targets: [origin.url], cache: responseCache() });
    let n = 0;
    const app = express().use((_req, res, next) => {
      res.setHeader('x-request-number', String(++n));
      next();
    });
    const front = await listen(app.use(lb) as never);
    try {
      await request(`${front.url}/page`);
      const hit = await request(`${front.url}/page`);
      assert.equal(cacheOutcome(hit.headers), 'HIT');
      assert.equal(hit.headers['x-request-number'], '2', "this request's own header, not the first one's");
      assert.equal(hit.headers['x-upstream'], 'kept');
      assert.equal(hit.headers['x-powered-by'], 'Express');
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });
});

describe('response cache on its own', () => {
  test('as Express middleware in front of routes', async () => {
    let calls = 0;
    const app = express();
    const cache = responseCache();
    app.use(cache);
    app.get('/page', (_req, res) => {
      calls++;
      res.set('cache-control', 'max-age=60').send(`page ${calls}`);
    });
    const server = await listen(app as never);
    try {
      const first = await request(`${server.url}/page`);
      const second = await request(`${server.url}/page`);
      assert.equal(first.body, 'page 1');
      assert.equal(second.body, 'page 1');
      assert.equal(cacheOutcome(second.headers), 'HIT');
      assert.equal(calls, 1);
    } finally {
      await server.close();
    }
  });

  test('wrapping a bare handler', async () => {
    let calls = 0;
    const cache = responseCache({ header: 'x-my-cache' });
    const server = await listen(
      cache.wrap((_req, res) => {
        calls++;
        res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        res.end('bare');
      }),
    );
    try {
      await request(server.url);
      const second = await request(server.url);
      assert.equal(second.headers['x-my-cache'], 'HIT');
      assert.equal(second.headers['content-type'], 'text/plain');
      assert.equal(calls, 1);
    } finally {
      await server.close();
    }
  });

  test('invalid options throw a TypeError naming the option', () => {
    assert.throws(() => responseCache({ maxSize: -1 }), /options\.maxSize/);
    assert.throws(() => responseCache({ maxEntrySize: 1.5 }), /options\.maxEntrySize/);
    assert.throws(
      () => responseCache({ keepStale: -1 }),
      /^TypeError: responseCache: options\.keepStale must be a non-negative integer of milliseconds, got -1$/,
    );
    assert.throws(() => responseCache({ header: '' }), /options\.header/);
    assert.throws(() => responseCache({ store: {} as never }), /options\.store/);
    assert.throws(() => loadBalance({ targets: ['http://127.0.0.1:1'], cache: {} as never }), /options\.cache/);
  });
});

/** Serves 10 MiB at /big (honouring backpressure), prints its port, then fetches /big through the port it is given on stdin and prints the byte count. */
const STREAMING_PEER = `
const http = require('node:http');
const readline = require('node:readline');
const chunk = Buffer.alloc(64 * 1024, 'z');
const origin = http.createServer((req, res) => {
  res.setHeader('cache-control', 'max-age=60');
  res.setHeader('content-length', 160 * chunk.length);
  let sent = 0;
  const pump = () => { while (sent < 160) { sent++; if (!res.write(chunk)) return void res.once('drain', pump); } res.end(); };
  pump();
}).listen(0, '127.0.0.1', () => console.log(origin.address().port));
readline.createInterface({ input: process.stdin }).on('line', (port) => {
  http.get('http://127.0.0.1:' + port + '/big', { agent: false }, (res) => {
    let total = 0;
    res.on('data', (c) => (total += c.length));
    res.on('end', () => console.log(total));
  });
});
`;

describe('response cache memory bounds', () => {
  test('a 10 MB body streams through with RSS growth below 20 MB and is not cached', async () => {
    // Origin and client live in a child process, so this process's RSS is the balancer's own.
    const child = spawn(process.execPath, ['-e', STREAMING_PEER], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const originPort = Number((await lines.next()).value);
    const lb = loadBalance({ targets: [`http://127.0.0.1:${originPort}`], cache: responseCache({ maxEntrySize: 1024 * 1024 }) });
    const front = await listen(lb);
    const stream = async (): Promise<number> => {
      child.stdin!.write(`${front.port}\n`);
      return Number((await lines.next()).value);
    };
    try {
      // Two passes first: the heap and socket buffers grow to their working size once, whatever the body.
      assert.equal(await stream(), 10 * 1024 * 1024);
      assert.equal(await stream(), 10 * 1024 * 1024);
      // The least growth of three passes: buffering would show in every one, a GC or a neighbour's load in one.
      const growths: number[] = [];
      for (let pass = 0; pass < 3; pass++) {
        const before = process.memoryUsage().rss;
        let peak = before;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
        const received = await stream();
        clearInterval(sampler);
        assert.equal(received, 10 * 1024 * 1024);
        growths.push((peak - before) / 1024 / 1024);
      }
      const growth = Math.min(...growths);
      assert.ok(growth < 20, `RSS grew ${growths.map((g) => g.toFixed(1)).join(', ')} MB`);
      assert.equal(lb.stats().cache!.stored, 0, 'not cached');
      assert.equal(lb.stats().cache!.misses, 5);
    } finally {
      child.kill();
      await lb.close();
      await front.close();
    }
  });

  test('the memory store never holds more than maxSize bytes: least recently used entries go', async () => {
    const origin = await listen((req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end(Buffer.alloc(30 * 1024, req.url ?? ''));
    });
    const lb = loadBalance({ targets: [origin.url], cache: responseCache({ maxSize: 100 * 1024, maxEntrySize: 64 * 1024 }) });
    const front = await listen(lb);
    try {
      for (let i = 0; i < 6; i++) await request(`${front.url}/item${i}`);
      const states: string[] = [];
      for (let i = 0; i < 6; i++) states.push(String(cacheOutcome((await request(`${front.url}/item${i}`)).headers)));
      const hits = states.filter((s) => s === 'HIT').length;
      assert.ok(hits <= 3, `at most 3 entries of 30 KiB fit in 100 KiB: ${states.join(',')}`);
      assert.equal(states[0], 'MISS', 'the oldest entry was evicted');
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });
});

describe('on-the-fly compression', () => {
  test('uncompressed text is compressed per client encoding, with Vary, and each encoding is cached', async () => {
    const text = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) });
    let calls = 0;
    const origin = await listen((_req, res) => {
      calls++;
      res.setHeader('content-type', 'application/json');
      res.setHeader('cache-control', 'max-age=60');
      res.end(text);
    });
    const lb = loadBalance({ targets: [origin.url], cache: responseCache({ compress: true }) });
    const front = await listen(lb);
    const fetchRaw = (acceptEncoding?: string) =>
      new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        http
          .get(`${front.url}/data`, { agent: false, headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {} }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
          })
          .on('error', reject);
      });
    try {
      const br = await fetchRaw('gzip, deflate, br');
      assert.equal(br.headers['content-encoding'], 'br');
      assert.match(String(br.headers.vary), /Accept-Encoding/);
      assert.equal(zlib.brotliDecompressSync(br.body).toString(), text);
      assert.ok(br.body.length < text.length / 3, `br ${br.body.length} of ${text.length} bytes`);
      const gzip = await fetchRaw('gzip');
      assert.equal(gzip.headers['content-encoding'], 'gzip');
      assert.equal(zlib.gunzipSync(gzip.body).toString(), text);
      const plain = await fetchRaw();
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(plain.body.toString(), text);
      assert.equal(calls, 3, 'one upstream fetch per encoding');
      const brAgain = await fetchRaw('br;q=1.0, gzip;q=0.5');
      assert.equal(cacheOutcome(brAgain.headers), 'HIT');
      assert.equal(brAgain.headers['content-encoding'], 'br');
      assert.equal(zlib.brotliDecompressSync(brAgain.body).toString(), text);
      const gzipAgain = await fetchRaw('gzip, deflate');
      assert.equal(cacheOutcome(gzipAgain.headers), 'HIT');
      assert.equal(calls, 3);
    } finally {
      await lb.close();
      await closeAll(front, origin);
    }
  });
});
