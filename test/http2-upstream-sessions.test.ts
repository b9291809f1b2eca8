import assert from 'node:assert/strict';
import http2, { type ServerHttp2Stream } from 'node:http2';
import { describe, test } from 'node:test';
import { httpHealthCheck, loadBalance, responseCache } from 'proxy-balancer';
import { closeAll, delay, request, waitFor } from './helpers.js';
import { data, PING } from './abuse/h2-frames.js';
import { echo, front, goaway, h2upstream, ok200, rawUpstream } from './http2-upstream.js';

// The HTTP/2 engine's session pool, seen from real node:http2 servers counting the sessions the
// balancer opens: the peer's stream limit, GOAWAY, idle close, PING keep-alive, lb.close().

describe('HTTP/2 upstream sessions', () => {
  test("the peer's SETTINGS_MAX_CONCURRENT_STREAMS is honoured: a full session makes another open", async () => {
    const held: ServerHttp2Stream[] = [];
    let hold = true;
    const upstream = await h2upstream(
      (stream) => {
        stream.respond({ ':status': 200 });
        if (hold) held.push(stream);
        else stream.end('ok');
      },
      { settings: { maxConcurrentStreams: 2 } },
    );
    const lb = loadBalance({ targets: [upstream.url] });
    const server = await front(lb);
    try {
      const replies = Array.from({ length: 5 }, () => request(`${server.url}/`));
      await waitFor(() => held.length === 5);
      assert.equal(held.length, 5);
      // 2 + 2 + 1 streams: three sessions, none over the limit.
      assert.equal(upstream.opened, 3);
      hold = false;
      for (const stream of held) stream.end('ok');
      for (const reply of await Promise.all(replies)) assert.equal(reply.body, 'ok');
      // The next requests reuse them: no session more.
      await Promise.all(Array.from({ length: 4 }, () => request(`${server.url}/`).then(() => undefined)));
      assert.equal(upstream.opened, 3);
    } finally {
      for (const stream of held) stream.close();
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('http2Session.maxConcurrentStreams caps a peer that allows more', async () => {
    const held: ServerHttp2Stream[] = [];
    const upstream = await h2upstream((stream) => {
      stream.respond({ ':status': 200 });
      held.push(stream);
    });
    const lb = loadBalance({ targets: [upstream.url], http2Session: { maxConcurrentStreams: 3 } });
    const server = await front(lb);
    try {
      const replies = Array.from({ length: 6 }, () => request(`${server.url}/`));
      await waitFor(() => held.length === 6);
      assert.equal(upstream.opened, 2);
      for (const stream of held) stream.end('ok');
      await Promise.all(replies);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('GOAWAY drains a session: its open stream completes, new requests go on a new session', async () => {
    const held: ServerHttp2Stream[] = [];
    const upstream = await h2upstream((stream, headers) => {
      if (headers[':path'] === '/slow') {
        stream.respond({ ':status': 200 });
        held.push(stream);
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('fast');
    });
    const lb = loadBalance({ targets: [upstream.url] });
    const server = await front(lb);
    try {
      const slow = request(`${server.url}/slow`);
      await waitFor(() => held.length === 1);
      const [first] = upstream.sessions;
      first!.goaway(http2.constants.NGHTTP2_NO_ERROR, held[0]!.id);
      await delay(50);
      assert.equal((await request(`${server.url}/`)).body, 'fast');
      assert.equal(upstream.opened, 2);
      held[0]!.end('slow done');
      assert.equal((await slow).body, 'slow done');
      // The drained session closes once its last stream is done.
      await waitFor(() => upstream.sessions.size === 1);
      assert.equal(upstream.sessions.size, 1);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('a GOAWAY whose last-stream-id is below a stream fails it unprocessed; a GET is retried elsewhere', async () => {
    // Node's own servers name at least the streams they received; a raw one says it processed none.
    const a = await rawUpstream(() => [goaway(0)]);
    const b = await h2upstream(echo('b'));
    const lb = loadBalance({ targets: [a.url, b.url], outlierDetection: false });
    const codes: string[] = [];
    lb.on('retry', (info) => codes.push(`${(info.error as NodeJS.ErrnoException).code}/${(info.error as { unprocessed?: boolean }).unprocessed}`));
    const server = await front(lb);
    try {
      const reply = await request(`${server.url}/`);
      assert.equal(reply.headers['x-backend'], 'b');
      assert.deepEqual(codes, ['ERR_HTTP2_GOAWAY_UNPROCESSED/true']);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(a, b);
    }
  });

  test('an idle session closes after http2Session.idleTimeout', async () => {
    const upstream = await h2upstream(echo('a'));
    const lb = loadBalance({ targets: [upstream.url], http2Session: { idleTimeout: 100 } });
    const server = await front(lb);
    try {
      await request(`${server.url}/`);
      assert.equal(upstream.sessions.size, 1);
      await waitFor(() => upstream.sessions.size === 0, 2000);
      assert.equal(upstream.sessions.size, 0);
      // The next request opens a new one.
      assert.equal((await request(`${server.url}/`)).headers['x-backend'], 'a');
      assert.equal(upstream.opened, 2);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('PING keep-alive every http2Session.pingInterval; a peer that stops answering loses its session', async () => {
    const upstream = await h2upstream(echo('a'));
    let pings = 0;
    upstream.server.on('session', (session: http2.Http2Session) => session.on('ping', () => pings++));
    const lb = loadBalance({ targets: [upstream.url], http2Session: { pingInterval: 50, pingTimeout: 100 } });
    const server = await front(lb);
    try {
      await request(`${server.url}/`);
      await waitFor(() => pings >= 2, 2000);
      assert.ok(pings >= 2, `pings: ${pings}`);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('a peer that leaves a PING unanswered for http2Session.pingTimeout loses its session', async () => {
    const mute = await rawUpstream((id) => [ok200(id), data(id, 'ok', true)]);
    const lb = loadBalance({ targets: [mute.url], http2Session: { pingInterval: 50, pingTimeout: 100 } });
    const server = await front(lb);
    try {
      assert.equal((await request(`${server.url}/`)).body, 'ok');
      assert.equal(mute.open, 1);
      await waitFor(() => mute.open === 0, 3000);
      assert.equal(mute.open, 0);
      assert.ok((mute.received.get(PING) ?? 0) >= 1);
      // The next request gets a fresh session.
      assert.equal((await request(`${server.url}/`)).body, 'ok');
    } finally {
      await server.close();
      await lb.close();
      await closeAll(mute);
    }
  });

  test('lb.close() leaves no session open: the server sees every one closed', async () => {
    const held: ServerHttp2Stream[] = [];
    const upstream = await h2upstream(
      (stream, headers) => {
        if (headers[':path'] === '/hold') {
          stream.respond({ ':status': 200 });
          held.push(stream);
          setTimeout(() => stream.end('done'), 100);
          return;
        }
        stream.respond({ ':status': 200 });
        stream.end('x');
      },
      { settings: { maxConcurrentStreams: 1 } },
    );
    const lb = loadBalance({ targets: [upstream.url] });
    const server = await front(lb);
    try {
      await Promise.all([request(`${server.url}/hold`), request(`${server.url}/hold`), request(`${server.url}/`)]);
      assert.ok(upstream.opened >= 2);
      assert.ok(upstream.sessions.size >= 2);
      await lb.close();
      await waitFor(() => upstream.sessions.size === 0);
      assert.equal(upstream.sessions.size, 0);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });
});

describe('HTTP/2 targets with the other features', () => {
  test('an active HTTP health check speaks h2 to an h2c target', async () => {
    const upstream = await h2upstream((stream, headers) => {
      stream.respond({ ':status': headers[':path'] === '/health' ? 200 : 404 });
      stream.end('ok');
    });
    const lb = loadBalance({ targets: [upstream.url], healthCheck: httpHealthCheck({ path: '/health', interval: 1000, expectBody: 'ok' }) });
    try {
      await lb.firstHealthCheck();
      const [target] = lb.stats().targets;
      assert.equal(target!.state, 'up');
      assert.equal(target!.lastCheck?.ok, true);
      assert.ok(upstream.seen.some((h) => h[':path'] === '/health'));
    } finally {
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('a failing h2 health check takes the target down; requests go to the healthy one', async () => {
    const sick = await h2upstream((stream) => {
      stream.respond({ ':status': 503 });
      stream.end();
    });
    const well = await h2upstream(echo('well'));
    const lb = loadBalance({ targets: [sick.url, well.url], healthCheck: httpHealthCheck({ interval: 1000, unhealthyThreshold: 1 }) });
    const server = await front(lb);
    try {
      await lb.firstHealthCheck();
      assert.deepEqual(
        lb.stats().targets.map((t) => t.state),
        ['down', 'up'],
      );
      for (let i = 0; i < 3; i++) assert.equal((await request(`${server.url}/`)).headers['x-backend'], 'well');
    } finally {
      await server.close();
      await lb.close();
      await closeAll(sick, well);
    }
  });

  test('passive outlier detection ejects an h2 target whose streams keep failing', async () => {
    const broken = await h2upstream((stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    const well = await h2upstream(echo('well'));
    const lb = loadBalance({ targets: [broken.url, well.url], retry: false, outlierDetection: { consecutiveFailures: 2 } });
    const server = await front(lb);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await request(`${server.url}/`)).status);
      assert.equal(lb.stats().targets[0]!.state, 'ejected');
      assert.ok(statuses.filter((s) => s === 502).length === 2, statuses.join());
    } finally {
      await server.close();
      await lb.close();
      await closeAll(broken, well);
    }
  });

  test('affinity, the response cache, retry.onStatus, rate limits, metrics and events on h2 targets', async () => {
    let aHits = 0;
    const a = await h2upstream((stream, headers) => {
      aHits++;
      if (headers[':path'] === '/busy') {
        stream.respond({ ':status': 503 });
        stream.end('busy');
        return;
      }
      stream.respond({ ':status': 200, 'x-backend': 'a', 'cache-control': headers[':path'] === '/cached' ? 'max-age=60' : 'no-store' });
      stream.end('from a');
    });
    const b = await h2upstream(echo('b'));
    const lb = loadBalance({
      targets: [a.url, b.url],
      affinity: { cookie: 'lb', secret: 'a secret of at least thirty-two characters' },
      cache: responseCache(),
      retry: { onStatus: [503] },
      rateLimit: { limit: 3, windowMs: 60_000, key: (req) => req.headers['x-client'] as string | undefined },
    });
    const responses: number[] = [];
    lb.on('response', (info) => responses.push(info.status));
    const metrics = lb.metrics();
    const server = await front((req, res) => (req.url === '/metrics' ? metrics(req, res) : lb(req, res)));
    try {
      // Affinity: the cookie keeps a client on the target that served it.
      const first = await request(`${server.url}/`);
      const cookie = String(first.headers['set-cookie']).split(';')[0]!;
      const sticky = [];
      for (let i = 0; i < 4; i++) sticky.push((await request(`${server.url}/`, { headers: { cookie } })).headers['x-backend']);
      assert.deepEqual(sticky, Array(4).fill(first.headers['x-backend']));
      // The cache: the second GET of /cached is a hit, a's count does not move.
      const { cacheOutcome } = await import('./helpers.js');
      const cachedFirst = await request(`${server.url}/cached`, { headers: { cookie: 'lb=none' } });
      const hitsBefore = aHits;
      const cachedAgain = await request(`${server.url}/cached`, { headers: { cookie: 'lb=none' } });
      if (cachedFirst.headers['x-backend'] === 'a') {
        assert.equal(cacheOutcome(cachedAgain.headers), 'HIT');
        assert.equal(aHits, hitsBefore);
      }
      // retry.onStatus: a's 503 goes to b.
      for (let i = 0; i < 2; i++) assert.equal((await request(`${server.url}/busy`)).status, 200);
      // Rate limits answer before any stream.
      const limited = [];
      for (let i = 0; i < 4; i++) limited.push((await request(`${server.url}/`, { headers: { 'x-client': 'k' } })).status);
      assert.deepEqual(limited, [200, 200, 200, 429]);
      const text = (await request(`${server.url}/metrics`)).body;
      assert.match(text, new RegExp(`proxy_balancer_requests_total\\{[^}]*target="http://127\\.0\\.0\\.1:${a.port}"`));
      assert.ok(responses.length >= 10);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(a, b);
    }
  });

  test('a mixed pool: HTTP/1.1 and HTTP/2 targets side by side, one balancer', async () => {
    const { backend } = await import('./helpers.js');
    const h1 = await backend('h1');
    const h2 = await h2upstream(echo('h2'));
    const lb = loadBalance({ targets: [h1.url, h2.url] });
    const server = await front(lb);
    try {
      const names = [];
      for (let i = 0; i < 4; i++) names.push((await request(`${server.url}/`)).headers['x-backend']);
      assert.deepEqual([...names].sort(), ['h1', 'h1', 'h2', 'h2']);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(h1, h2);
    }
  });
});
