import assert from 'node:assert/strict';
import http2, { type ClientHttp2Session, type Http2Server, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { type CacheStore, type LoadBalancer, loadBalance, type LoadBalanceOptions, memoryStore, responseCache } from 'proxy-balancer';
import { delay, listen, request, waitFor } from '../helpers.js';
import { type CountingBackend, countingBackend } from './harness.js';
import { data, ENHANCE_YOUR_CALM, headers, rapidResets, rawH2, RST_STREAM, rstStream } from './h2-frames.js';

// HTTP/2 Rapid Reset (CVE-2023-44487): streams opened and reset at once, over and over. Each must
// cost the balancer no upstream connection, and a connection doing mostly that is closed.

interface H2Front {
  server: Http2Server;
  port: number;
  sessions: Set<ServerHttp2Session>;
  close(): Promise<void>;
}

/** An h2c server (prior knowledge) in front of `lb`, keeping its sessions so the test can end them. */
async function h2front(lb: LoadBalancer): Promise<H2Front> {
  const server = http2.createServer(lb as never);
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Everything a test made, closed in order whatever happened. */
async function setup(options: Omit<LoadBalanceOptions, 'targets'> = {}, backendHandler?: Parameters<typeof countingBackend>[0]) {
  const backend = await countingBackend(backendHandler);
  const lb = loadBalance({ targets: [backend.url], ...options });
  const front = await h2front(lb);
  return {
    backend,
    lb,
    front,
    close: async (): Promise<void> => {
      await front.close();
      // Bounded: an exchange that never ends (the bug some tests look for) must fail the test, not hang it.
      await Promise.race([lb.close(), delay(2000)]);
      await backend.close();
    },
  };
}

/** One ordinary GET through a fresh h2 session: the status. */
async function h2get(port: number, path = '/'): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    return await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': path });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.resume();
    });
  } finally {
    session.close();
  }
}

function streamsAnswered(backend: CountingBackend, lb: LoadBalancer): string {
  return `${backend.connections} backend connections, ${backend.arrivals.length} requests, ${lb.stats().inFlight} in flight`;
}

describe('HTTP/2 Rapid Reset: streams reset as soon as they are opened', () => {
  test('1,000 streams, each HEADERS then RST_STREAM in one write, open no backend connection', async () => {
    // prematureResets off: the session stays up through all 1,000, as it would for a client below the threshold.
    const { backend, lb, front, close } = await setup({ prematureResets: false });
    try {
      const client = await rawH2(front.port);
      client.write(rapidResets(1, 1000));
      // A last ordinary request on the same connection, answered once every reset before it is processed.
      client.write(headers(2001, '/after'));
      await waitFor(() => client.responded().has(2001), 5000);
      assert.ok(client.responded().has(2001), 'the connection still serves');
      assert.equal(client.goaway, undefined);
      // Measured: 1,000 connections before upstream work waited for the frames read with the stream,
      // none after. Slack of 2: a pair split across two TCP reads is a reset read after dispatch.
      assert.ok(backend.connections >= 1 && backend.connections <= 3, `the last request and at most 2 more: ${streamsAnswered(backend, lb)}`);
      assert.ok(backend.arrivals.some((a) => a.url === '/after'));
      assert.ok(lb.stats().targets[0]!.total <= 3, 'no exchange was started for a reset stream');
      client.socket.destroy();
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await close();
    }
  });

  /** A store answering later, like Redis: the resets are read while its lookups are pending. */
  function slowStore(): CacheStore {
    const inner = memoryStore({ maxSize: 1_000_000 });
    return {
      get: async (key) => (await delay(20), inner.get(key)),
      set: (key, entry, ttl, size) => inner.set(key, entry, ttl, size),
      delete: (key) => inner.delete(key),
      deletePrefix: (prefix) => inner.deletePrefix(prefix),
    };
  }

  for (const [name, options] of [
    // An h2 response has no `destroyed`: the cache's own check for a client gone could not see these.
    ['an async cache lookup', () => ({ cache: responseCache({ store: slowStore() }) })],
    ['an async filter and a connection cap', () => ({ filter: async () => (await delay(5), true), maxConnections: 4 })],
  ] as const) {
    test(`through ${name}: still no backend connection`, async () => {
      const { backend, lb, front, close } = await setup({ prematureResets: false, ...options() });
      try {
        const client = await rawH2(front.port);
        for (let i = 0; i < 3; i++) client.write(rapidResets(1 + 400 * i, 200, `/cached/${i}`));
        await delay(300);
        assert.equal(backend.connections, 0, streamsAnswered(backend, lb));
        assert.equal(lb.stats().inFlight, 0);
        assert.equal(lb.stats().targets[0]!.queued, 0);
        client.socket.destroy();
        assert.equal(await h2get(front.port, '/fresh'), 200, 'ordinary requests still pass');
      } finally {
        await close();
      }
    });
  }

  test('a stream reset during an async cache lookup: nothing goes upstream for it, and the next request for its key is not held', async () => {
    const { backend, lb, front, close } = await setup({ prematureResets: false, cache: responseCache({ store: slowStore() }) }, (_req, res) => {
      res.setHeader('cache-control', 'max-age=60');
      res.end('fresh');
    });
    try {
      const client = await rawH2(front.port);
      client.write(headers(1, '/key'));
      await delay(5);
      client.write(rstStream(1));
      await delay(50);
      client.socket.destroy();
      const started = Date.now();
      assert.equal(await h2get(front.port, '/key'), 200);
      // The cache's default coalesceTimeout is 5 s: a request waiting on a leader that never settles takes that long.
      assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
      assert.equal(backend.arrivals.length, 1);
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await close();
    }
  });

  test('streams reset while they wait for a connection slot leave the queue and never reach the backend', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { backend, lb, front, close } = await setup({ prematureResets: false, maxConnections: 1 }, (req, res) => {
      if (req.url === '/hold') void held.then(() => res.end('held'));
      else res.end('ok');
    });
    const session = http2.connect(`http://127.0.0.1:${front.port}`);
    session.on('error', () => {});
    try {
      const holding = session.request({ ':path': '/hold' });
      holding.on('error', () => {});
      holding.resume();
      await waitFor(() => backend.arrivals.length === 1);
      const client = await rawH2(front.port);
      client.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => headers(1 + 2 * i, `/queued/${i}`))));
      await waitFor(() => lb.stats().targets[0]!.queued === 20);
      assert.equal(lb.stats().targets[0]!.queued, 20);
      client.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => rstStream(1 + 2 * i))));
      await waitFor(() => lb.stats().targets[0]!.queued === 0);
      assert.equal(lb.stats().targets[0]!.queued, 0);
      release();
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(backend.connections, 1, streamsAnswered(backend, lb));
      assert.equal(backend.arrivals.length, 1);
      client.socket.destroy();
    } finally {
      release();
      session.destroy();
      await close();
    }
  });
});

describe('HTTP/2 premature resets: a connection resetting most of its streams is closed', () => {
  test('defaults (500 streams, 1 s): the 251st premature reset closes the session with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const { backend, lb, front, close } = await setup();
    try {
      const client = await rawH2(front.port);
      client.write(rapidResets(1, 1000));
      await Promise.race([client.closed, delay(5000)]);
      assert.ok(client.socket.destroyed, 'the server closed the connection');
      assert.equal(client.goaway?.code, ENHANCE_YOUR_CALM);
      // Stream 501 is the 251st: more than half of 500 reset early. Node 20 closes the session there;
      // Node 24 reports the streams' closes after the whole read, so its GOAWAY names a later stream.
      assert.ok(client.goaway.lastStreamId >= 501, `GOAWAY after stream ${client.goaway.lastStreamId}`);
      assert.equal(lb.stats().prematureResetCloses, 1);
      assert.ok(backend.connections <= 2, streamsAnswered(backend, lb));
      const metrics = await listen(lb.metrics());
      try {
        assert.match((await request(metrics.url)).body, /^proxy_balancer_premature_reset_closes_total 1$/m);
      } finally {
        await metrics.close();
      }
      // The process and the balancer go on serving.
      assert.equal(await h2get(front.port), 200);
      assert.equal(lb.stats().prematureResetCloses, 1);
    } finally {
      await close();
    }
  });

  test('a lower totalStreams: past it, more than half of all streams closed so far must be premature', async () => {
    const { lb, front, close } = await setup({ prematureResets: { totalStreams: 20 } });
    try {
      const client = await rawH2(front.port);
      // 10 ordinary streams, each answered.
      client.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => headers(1 + 2 * i, `/ok/${i}`))));
      await waitFor(() => client.responded().size === 10);
      await waitFor(() => front.sessions.size === 1 && lb.stats().inFlight === 0);
      // Then resets: the 11th makes 11 of 21 streams premature.
      client.write(rapidResets(21, 30));
      await Promise.race([client.closed, delay(5000)]);
      // Stream 41 is the 21st: 11 of 21 premature (later on Node 24, as above).
      assert.equal(client.goaway?.code, ENHANCE_YOUR_CALM);
      assert.ok(client.goaway.lastStreamId >= 41, `GOAWAY after stream ${client.goaway.lastStreamId}`);
      assert.equal(lb.stats().prematureResetCloses, 1);
    } finally {
      await close();
    }
  });

  test('resets after the request went upstream: each costs that upstream connection, until the session is closed', async () => {
    // An HTTP/1.1 request cannot be cancelled but by closing its connection; the threshold bounds how often.
    const { backend, lb, front, close } = await setup({ prematureResets: { totalStreams: 20 } }, () => {});
    try {
      const client = await rawH2(front.port);
      for (let i = 0; i < 15 && client.goaway === undefined; i++) {
        const id = 1 + 2 * i;
        client.write(headers(id, `/late/${i}`));
        await waitFor(() => backend.arrivals.length === i + 1);
        client.write(rstStream(id));
        await waitFor(() => lb.stats().inFlight === 0 && backend.open.size === 0);
        await waitFor(() => client.goaway !== undefined, i === 10 ? 2000 : 20);
      }
      assert.deepEqual(client.goaway, { lastStreamId: 21, code: ENHANCE_YOUR_CALM }, 'the 11th premature reset of 20 streams closes it');
      assert.equal(backend.connections, 11, 'one upstream connection per reset, no more');
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await close();
    }
  });

  test('an ordinary client, with cancels before and after the response head, is never closed', async () => {
    const { backend, lb, front, close } = await setup({}, (req, res) => {
      if (req.url?.startsWith('/slow')) {
        res.writeHead(200);
        res.write('first');
        setTimeout(() => res.end('rest'), 50);
        return;
      }
      req.on('end', () => res.end('ok'));
    });
    const session: ClientHttp2Session = http2.connect(`http://127.0.0.1:${front.port}`);
    let goaway: number | undefined;
    session.on('goaway', (code) => (goaway = code));
    session.on('error', () => {});
    try {
      const statuses: number[] = [];
      let cancelled = 0;
      // 600 requests, 20 at a time, on one session: every 10th cancelled as soon as it is sent
      // (premature: 60 of 600), every 10th more cancelled once its response head is in (not premature).
      for (let batch = 0; batch < 30; batch++) {
        await Promise.all(
          Array.from({ length: 20 }, (_, j) => {
            const n = batch * 20 + j;
            return new Promise<void>((resolve) => {
              const stream = session.request({ ':path': n % 10 === 5 ? `/slow/${n}` : `/r/${n}` });
              stream.on('error', () => {});
              stream.on('close', () => resolve());
              if (n % 10 === 0) {
                stream.close(http2.constants.NGHTTP2_CANCEL);
                cancelled++;
                return;
              }
              stream.on('response', (h) => {
                statuses.push(Number(h[':status']));
                if (n % 10 === 5) stream.close(http2.constants.NGHTTP2_CANCEL);
              });
              stream.resume();
            });
          }),
        );
      }
      assert.equal(cancelled, 60);
      assert.equal(statuses.length, 540);
      assert.ok(
        statuses.every((s) => s === 200),
        'every request not cancelled was answered',
      );
      assert.equal(goaway, undefined, 'no GOAWAY');
      assert.equal(session.destroyed || session.closed, false);
      assert.equal(lb.stats().prematureResetCloses, 0);
      assert.ok(backend.arrivals.length >= 540);
    } finally {
      session.destroy();
      await close();
    }
  });

  test('prematureResets is validated', () => {
    const targets = ['http://127.0.0.1:1'];
    assert.throws(() => loadBalance({ targets, prematureResets: true as never }), /options\.prematureResets must be an object/);
    assert.throws(
      () => loadBalance({ targets, prematureResets: { totalStreams: 0 } }),
      /options\.prematureResets\.totalStreams must be a positive integer of streams, got 0/,
    );
    assert.throws(() => loadBalance({ targets, prematureResets: { minStreamLifetime: -1 } }), /options\.prematureResets\.minStreamLifetime must be/);
    assert.throws(() => loadBalance({ targets, prematureResets: { total: 5 } as never }), /unknown option "prematureResets\.total"/);
    for (const ok of [false, {}, { totalStreams: 1, minStreamLifetime: 0 }] as const) void loadBalance({ targets, prematureResets: ok }).close();
  });
});

describe('HTTP/2 DATA after END_STREAM', () => {
  for (const [name, opening, body] of [
    ['a GET (HEADERS ended the stream)', headers(1, '/get'), ''],
    ['a POST whose body ended', Buffer.concat([headers(1, '/post', { method: 'POST', endStream: false }), data(1, 'abc', true)]), 'abc'],
  ] as const) {
    test(`${name}: nghttp2 fails the connection (GOAWAY STREAM_CLOSED); the backend sees nothing more`, async () => {
      const { backend, lb, front, close } = await setup({}, (req, res) => {
        req.on('end', () => setTimeout(() => res.end('ok'), 100));
      });
      try {
        const client = await rawH2(front.port);
        client.write(opening);
        await waitFor(() => backend.arrivals[0]?.complete === true);
        client.write(data(1, 'smuggled', true));
        await waitFor(() => client.goaway !== undefined);
        // RFC 9113 §5.1: DATA on a half-closed (remote) stream is a STREAM_CLOSED error; nghttp2 makes it a connection error.
        assert.deepEqual(client.goaway, { lastStreamId: 1, code: http2.constants.NGHTTP2_STREAM_CLOSED });
        assert.ok(!client.frames.some((f) => f.type === RST_STREAM));
        await delay(200);
        assert.equal(backend.arrivals.length, 1);
        assert.equal(backend.arrivals[0]!.body, body, 'the extra DATA never went upstream');
        client.socket.destroy();
        assert.equal(await h2get(front.port), 200, 'the balancer keeps serving');
      } finally {
        // Node 20 stops reading a session nghttp2 has failed and never closes it, even once the
        // client hangs up (Node 24 closes it): the test ends it.
        await close();
      }
      assert.equal(lb.stats().inFlight, 0);
    });
  }
});
