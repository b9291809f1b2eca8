import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadBalance, type MirrorInfo, peakEwma, type StatusSnapshot } from 'proxy-balancer';
import { backend, closeAll, deadPort, delay, listen, request, selfSignedCert, waitFor } from './helpers.js';

/** A mirror that accepts connections and never reads nor answers them. */
async function stalledMirror(): Promise<{ url: string; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.pause();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A mirror that reads each copy whole and keeps what it saw. */
async function recordingMirror() {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer; complete: boolean }> = [];
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('close', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), complete: req.complete });
    });
    req.on('end', () => res.end('shadow answer'));
  });
  return { server, seen };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** One request on `agent`, resolving with its latency in ms once the answer is read whole. */
function timed(url: string, agent: http.Agent, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request(url, { agent, method: body === undefined ? 'GET' : 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - start));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('request mirroring', () => {
  test('a stalled or refusing mirror costs the client nothing, on the same keep-alive connection', async () => {
    const real = await backend('real');
    const stalled = await stalledMirror();
    const refused = `http://127.0.0.1:${await deadPort()}`;
    const plain = loadBalance({ targets: [real.url] });
    const mirrored = loadBalance({
      targets: [real.url],
      mirror: [
        { target: stalled.url, timeout: 2000, maxInFlight: 32 },
        { target: refused, maxInFlight: 32 },
      ],
    });
    const events: MirrorInfo[] = [];
    mirrored.on('mirror', (info) => events.push(info));
    const [front, frontMirrored] = await Promise.all([listen(plain), listen(frontOf(mirrored))]);
    // One socket each: every request after the first rides the connection of the one before.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const agentMirrored = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = randomBytes(16 * 1024);
    const without: number[] = [];
    const withMirror: number[] = [];
    try {
      for (let i = 0; i < 400; i++) {
        // Interleaved, so load from elsewhere on the machine falls on both alike.
        const payload = i % 2 === 0 ? undefined : body;
        without.push(await timed(front.url, agent, payload));
        withMirror.push(await timed(frontMirrored.url, agentMirrored, payload));
      }
      const [p50a, p99a, p50b, p99b] = [percentile(without, 0.5), percentile(without, 0.99), percentile(withMirror, 0.5), percentile(withMirror, 0.99)];
      console.log(
        `latency ms without mirror p50 ${p50a.toFixed(2)} p99 ${p99a.toFixed(2)}; with a stalled and a refusing mirror p50 ${p50b.toFixed(2)} p99 ${p99b.toFixed(2)}`,
      );
      assert.ok(p50b < p50a + 1.5, `p50 ${p50b} against ${p50a}`);
      assert.ok(p99b < p99a * 1.5 + 3, `p99 ${p99b} against ${p99a}`);
      assert.ok(Math.max(...withMirror) < 500, `no request waited for the stalled mirror: slowest ${Math.max(...withMirror)} ms`);
      assert.equal(real.hits, 800);
      const [stalledStats, refusedStats] = mirrored.stats().mirror!;
      console.log(`stalled mirror ${JSON.stringify(stalledStats)}; refusing mirror ${JSON.stringify(refusedStats)}`);
      assert.ok(stalledStats.inFlight <= 32 && stalledStats.sent >= 32, JSON.stringify(stalledStats));
      assert.equal(stalledStats.sent + stalledStats.skipped, 400, 'every request is copied or counted skipped');
      assert.ok(stalledStats.skipped > 0, 'past maxInFlight, copies are skipped');
      assert.equal(refusedStats.sent + refusedStats.skipped, 400);
      // Held off for 1 s after each refusal: about one connection attempt a second.
      assert.ok(refusedStats.sent <= 10 && refusedStats.skipped >= 390, JSON.stringify(refusedStats));
      await waitFor(() => mirrored.stats().mirror![1].inFlight === 0);
      assert.equal(mirrored.stats().mirror![1].failed, mirrored.stats().mirror![1].sent, 'every copy to the refusing mirror failed');
      assert.ok(events.some((e) => e.result === 'failed' && e.mirror === `${refused}/` && (e.error as NodeJS.ErrnoException)?.code === 'ECONNREFUSED'));
      assert.ok(events.some((e) => e.result === 'skipped' && e.mirror === `${stalled.url}/`));
      // The mirror's failures are not the target's.
      const target = mirrored.stats().targets[0];
      assert.equal(target.state, 'up');
      assert.equal(target.errors, 0);
      // The stalled copies fail at their timeout.
      await waitFor(() => mirrored.stats().mirror![0].inFlight === 0, 4000);
      const after = mirrored.stats().mirror![0];
      assert.equal(after.failed, after.sent, JSON.stringify(after));
      assert.ok(events.some((e) => e.result === 'failed' && /within 2000 ms/.test(e.error?.message ?? '')));
    } finally {
      agent.destroy();
      agentMirrored.destroy();
      await Promise.all([plain.close(), mirrored.close()]);
      await closeAll(front, frontMirrored, real, stalled);
    }
  });

  test('memory stays bounded across 2,000 requests with a stalled mirror: maxInFlight holds', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const real = await backend('real');
    const stalled = await stalledMirror();
    const lb = loadBalance({ targets: [real.url], mirror: { target: stalled.url, maxInFlight: 20, timeout: 60_000 } });
    const front = await listen(lb);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const body = randomBytes(32 * 1024);
    let most = 0;
    const run = async (count: number): Promise<void> => {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next++ < count) {
          await timed(front.url, agent, body);
          most = Math.max(most, lb.stats().mirror![0].inFlight);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    };
    try {
      await run(200);
      gc();
      const before = process.memoryUsage().heapUsed;
      await run(2000);
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      const stats = lb.stats().mirror![0];
      console.log(`heap grew ${(grown / 1e6).toFixed(2)} MB over 2000 requests; most copies in flight ${most}; ${JSON.stringify(stats)}`);
      assert.equal(most, 20, 'maxInFlight copies at most, and the budget was reached');
      assert.equal(stats.sent, 20);
      assert.equal(stats.skipped, 2180);
      assert.ok(grown < 4e6, `heap grew ${grown} bytes`);
      assert.equal(stalled.sockets.size, 20, 'one connection per copy in flight');
    } finally {
      agent.destroy();
      await lb.close();
      await closeAll(front, real, stalled);
    }
    assert.equal(lb.stats().mirror![0].inFlight, 0, 'close aborts the copies in flight');
  });

  test('a 1 MB POST body reaches the mirror exactly, with the forwarding headers and a -shadow Host', async () => {
    const real = await backend('real');
    const { server: shadow, seen } = await recordingMirror();
    const lb = loadBalance({ targets: [real.url], mirror: { target: `${shadow.url}/shadow`, maxBodyBytes: 2 * 1024 * 1024 } });
    const kept = loadBalance({ targets: [real.url], mirror: { target: shadow.url, keepHost: true } });
    const [front, frontKept] = await Promise.all([listen(lb), listen(kept)]);
    const body = randomBytes(1024 * 1024);
    try {
      const reply = await request(`${front.url}/echo/upload?x=1`, { method: 'POST', body, headers: { host: 'api.example.com:8080' } });
      assert.equal(reply.status, 200);
      assert.equal(JSON.parse(reply.body).body.length > 0, true);
      await waitFor(() => seen.length === 1);
      const copy = seen[0];
      assert.equal(copy.method, 'POST');
      assert.equal(copy.url, '/shadow/echo/upload?x=1', "the mirror URL's path is prepended");
      assert.equal(copy.complete, true);
      assert.equal(copy.body.length, body.length);
      assert.equal(createHash('sha256').update(copy.body).digest('hex'), createHash('sha256').update(body).digest('hex'));
      assert.equal(copy.headers.host, 'api.example.com-shadow:8080');
      assert.equal(copy.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(copy.headers['x-forwarded-host'], 'api.example.com:8080');
      await waitFor(() => lb.stats().mirror![0].completed === 1);
      assert.deepEqual(lb.stats().mirror![0], { targets: [`${shadow.url}/shadow`], sent: 1, completed: 1, failed: 0, skipped: 0, inFlight: 0 });

      await request(`${frontKept.url}/a`, { headers: { host: 'api.example.com' } });
      await waitFor(() => seen.length === 2);
      assert.equal(seen[1].headers.host, 'api.example.com', 'keepHost: the Host as sent');
      assert.equal(seen[1].method, 'GET');

      // Declared over maxBodyBytes (1 MiB by default): not copied.
      await request(`${frontKept.url}/big`, { method: 'POST', body: randomBytes(1024 * 1024 + 1) });
      assert.equal(kept.stats().mirror![0].skipped, 1);
    } finally {
      await Promise.all([lb.close(), kept.close()]);
      await closeAll(front, frontKept, real, shadow);
    }
  });

  test('1 MB uploads are not held by a mirror that never reads: the copy buffers, the client does not wait', async () => {
    const sizes: number[] = [];
    const real = await listen((req, res) => {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        sizes.push(size);
        res.end('stored');
      });
    });
    const stalled = await stalledMirror();
    const lb = loadBalance({ targets: [real.url], mirror: { target: stalled.url, maxBodyBytes: 2 * 1024 * 1024, timeout: 3000 } });
    const front = await listen(lb);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = randomBytes(1024 * 1024);
    try {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) times.push(await timed(front.url, agent, body));
      console.log(`1 MB uploads with a mirror that never reads: ${times.map((t) => t.toFixed(1)).join(', ')} ms`);
      assert.deepEqual(sizes, [body.length, body.length, body.length, body.length, body.length]);
      assert.ok(Math.max(...times) < 1000, `slowest upload ${Math.max(...times)} ms`);
      const stats = lb.stats().mirror![0];
      assert.equal(stats.sent, 5);
      assert.equal(stats.inFlight, 5, 'the copies wait on the mirror, the client did not');
    } finally {
      agent.destroy();
      await lb.close();
      await closeAll(front, real, stalled);
    }
  });

  test('an https: mirror is verified against its own name, not the -shadow Host', async () => {
    const { key, cert } = selfSignedCert();
    const real = await backend('real');
    const seen: string[] = [];
    const shadow = await listen((req, res) => {
      seen.push(String(req.headers.host));
      req.resume();
      req.on('end', () => res.end('ok'));
    }, https.createServer({ key, cert }));
    const lb = loadBalance({ targets: [real.url], agentOptions: { ca: cert }, mirror: `https://localhost:${shadow.port}` });
    const front = await listen(lb);
    try {
      await request(front.url, { headers: { host: 'api.example.com' } });
      await waitFor(() => lb.stats().mirror![0].inFlight === 0);
      assert.deepEqual(lb.stats().mirror![0], { targets: [`https://localhost:${shadow.port}/`], sent: 1, completed: 1, failed: 0, skipped: 0, inFlight: 0 });
      assert.deepEqual(seen, ['api.example.com-shadow']);
    } finally {
      await lb.close();
      await closeAll(front, real, shadow);
    }
  });

  test('a chunked body growing past maxBodyBytes aborts its copy; a mirror answering early ends its copy', async () => {
    const sizes: number[] = [];
    const real = await listen((req, res) => {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        sizes.push(size);
        res.end('stored');
      });
    });
    const { server: shadow, seen } = await recordingMirror();
    // Answers 413 at once, reading nothing.
    const early = await listen((_req, res) => {
      res.statusCode = 413;
      res.end();
    });
    const events: MirrorInfo[] = [];
    const lb = loadBalance({
      targets: [real.url],
      mirror: [
        { target: shadow.url, maxBodyBytes: 64 * 1024 },
        { target: early.url, maxBodyBytes: 4 * 1024 * 1024 },
      ],
    });
    lb.on('mirror', (info) => events.push(info));
    const front = await listen(lb);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${front.url}/upload`, { method: 'POST', agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        // No Content-Length: chunked, so the size is known only as it streams.
        for (let i = 0; i < 16; i++) req.write(randomBytes(32 * 1024));
        req.end();
      });
      assert.equal(status, 200);
      assert.deepEqual(sizes, [512 * 1024], 'the real target got it whole');
      await waitFor(() => lb.stats().mirror!.every((m) => m.inFlight === 0));
      const [capped, answered] = lb.stats().mirror!;
      assert.deepEqual([capped.sent, capped.failed, answered.sent, answered.completed], [1, 1, 1, 1]);
      assert.ok(events.some((e) => e.result === 'failed' && /maxBodyBytes/.test(e.error?.message ?? '')));
      assert.ok(events.some((e) => e.result === 'completed' && e.status === 413 && e.url === '/upload'));
      await waitFor(() => seen.length === 1);
      assert.equal(seen[0].complete, false, 'the capped copy reached its mirror cut, never as complete');
    } finally {
      await lb.close();
      await closeAll(front, real, shadow, early);
    }
  });

  test('a body cut short by the client is never passed to the mirror as complete', async () => {
    const real = await listen((req, res) => {
      req.resume();
      req.on('error', () => {});
      req.on('end', () => res.end('ok'));
    });
    const { server: shadow, seen } = await recordingMirror();
    const lb = loadBalance({ targets: [real.url], mirror: shadow.url });
    const front = await listen(lb);
    try {
      const socket = net.connect(front.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
      socket.write(Buffer.alloc(5000, 1));
      await waitFor(() => lb.stats().mirror![0].sent === 1);
      await delay(50);
      socket.destroy();
      await waitFor(() => lb.stats().mirror![0].failed === 1);
      assert.equal(lb.stats().mirror![0].failed, 1);
      await waitFor(() => seen.length === 1);
      assert.equal(seen[0].complete, false, 'the mirror saw a cut request');
    } finally {
      await lb.close();
      await closeAll(front, real, shadow);
    }
  });

  test('an HTTP/2 request is mirrored as HTTP/1.1: no pseudo-headers, its body whole', async () => {
    const real = await backend('real');
    const { server: shadow, seen } = await recordingMirror();
    const lb = loadBalance({ targets: [real.url], mirror: shadow.url });
    const server = http2.createServer(lb as never);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/echo/h2', 'x-custom': 'yes' });
        let code = 0;
        stream.on('response', (head) => (code = Number(head[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.on('end', () => resolve(code));
        stream.end('h2 body for the mirror');
      });
      assert.equal(status, 200);
      await waitFor(() => seen.length === 1);
      assert.equal(seen[0].body.toString(), 'h2 body for the mirror');
      assert.equal(seen[0].url, '/echo/h2');
      assert.equal(seen[0].headers.host, `127.0.0.1-shadow:${port}`);
      assert.equal(seen[0].headers['x-custom'], 'yes');
      assert.ok(Object.keys(seen[0].headers).every((name) => !name.startsWith(':')));
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await lb.close();
      await closeAll(real, shadow);
    }
  });

  test('fraction samples requests within statistical bounds; filter picks which', async () => {
    const real = await backend('real');
    const { server: shadow, seen } = await recordingMirror();
    const lb = loadBalance({
      targets: [real.url],
      mirror: { target: shadow.url, fraction: 0.25, filter: (req) => req.url!.startsWith('/a') },
    });
    const front = await listen(lb);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      for (let i = 0; i < 200; i++) {
        await Promise.all([
          timed(`${front.url}/a/${i}`, agent),
          timed(`${front.url}/b/${i}`, agent),
          timed(`${front.url}/a/x${i}`, agent),
          timed(`${front.url}/a/y${i}`, agent),
        ]);
      }
      await waitFor(() => lb.stats().mirror![0].inFlight === 0);
      const stats = lb.stats().mirror![0];
      // 600 candidates at 0.25: 150 expected, σ ≈ 10.6; 5σ either side.
      console.log(`fraction 0.25 of 600 filtered requests: ${stats.sent} copies`);
      assert.ok(stats.sent > 97 && stats.sent < 203, `${stats.sent} copies`);
      assert.equal(stats.completed, stats.sent);
      await waitFor(() => seen.length === stats.sent);
      assert.ok(
        seen.every((s) => s.url.startsWith('/a')),
        'the filter keeps /b out',
      );
    } finally {
      agent.destroy();
      await lb.close();
      await closeAll(front, real, shadow);
    }
  });

  test('several mirror URLs take turns; off, stats say undefined', async () => {
    const real = await backend('real');
    const one = await recordingMirror();
    const two = await recordingMirror();
    const lb = loadBalance({ targets: [real.url], mirror: { target: [one.server.url, new URL(two.server.url)] } });
    const off = loadBalance({ targets: [real.url] });
    const front = await listen(lb);
    try {
      for (let i = 0; i < 6; i++) await request(`${front.url}/${i}`);
      await waitFor(() => one.seen.length + two.seen.length === 6);
      assert.equal(one.seen.length, 3);
      assert.equal(two.seen.length, 3);
      assert.equal(off.stats().mirror, undefined);
    } finally {
      await Promise.all([lb.close(), off.close()]);
      await closeAll(front, real, one.server, two.server);
    }
  });

  test('stats, metrics and the status page show the copies; peakEwma probes show per target', async () => {
    const real = await backend('real');
    const { server: shadow } = await recordingMirror();
    const refused = `http://127.0.0.1:${await deadPort()}`;
    const lb = loadBalance({ targets: [real.url], strategy: peakEwma(), mirror: [{ target: shadow.url }, { target: refused }] });
    const [front, metrics, status] = await Promise.all([listen(lb), listen(lb.metrics()), listen(lb.statusPage())]);
    try {
      for (let i = 0; i < 3; i++) await request(front.url);
      await waitFor(() => lb.stats().mirror!.every((m) => m.inFlight === 0));
      const text = (await request(metrics.url)).body;
      assert.match(text, new RegExp(`proxy_balancer_mirror_copies_total\\{mirror="${shadow.url}/",result="completed"\\} 3`));
      // The refusing mirror: its first copy failed, the next were skipped while it was held off.
      const dead = lb.stats().mirror![1];
      assert.ok(dead.failed >= 1 && dead.failed === dead.sent && dead.sent + dead.skipped === 3, JSON.stringify(dead));
      assert.match(text, new RegExp(`proxy_balancer_mirror_copies_total\\{mirror="${refused}/",result="failed"\\} ${dead.failed}`));
      assert.match(text, new RegExp(`proxy_balancer_mirror_copies_total\\{mirror="${refused}/",result="skipped"\\} ${dead.skipped}`));
      assert.match(text, new RegExp(`proxy_balancer_mirror_copies_total\\{mirror="${shadow.url}/",result="skipped"\\} 0`));
      assert.match(text, new RegExp(`proxy_balancer_mirror_in_flight\\{mirror="${shadow.url}/"\\} 0`));
      assert.match(text, new RegExp(`proxy_balancer_strategy_probes_total\\{target="${real.url}/?"\\} 0`));
      const json = JSON.parse((await request(`${status.url}/?format=json`)).body) as StatusSnapshot;
      assert.deepEqual(
        json.mirror!.map((m) => [m.sent, m.completed, m.failed, m.skipped]),
        [
          [3, 3, 0, 0],
          [dead.sent, 0, dead.failed, dead.skipped],
        ],
      );
      const html = (await request(`${status.url}/`)).body;
      assert.match(html, /Mirror copies/);
      assert.equal(lb.stats().targets[0].balancing?.probes, 0);
    } finally {
      await lb.close();
      await closeAll(front, metrics, status, real, shadow);
    }
  });

  test('bad mirror options are refused at start-up, naming the option', () => {
    const targets = ['http://127.0.0.1:1'];
    const refuses = (mirror: unknown, message: RegExp): void => {
      assert.throws(() => loadBalance({ targets, mirror } as never), { name: 'TypeError', message });
    };
    refuses({ target: 'http://m', fraction: 1.5 }, /^loadBalance: options\.mirror\.fraction must be a number at least 0 and at most 1, got 1\.5/);
    refuses({ target: 'http://m', fraction: -0.1 }, /options\.mirror\.fraction must be/);
    refuses(
      [{ target: 'http://m' }, { target: 'http://m', maxBodyBytes: -1 }],
      /options\.mirror\[1\]\.maxBodyBytes must be a non-negative integer of bytes, got -1/,
    );
    refuses({ target: 'http://m', timeout: 0 }, /options\.mirror\.timeout must be a positive number of milliseconds/);
    refuses({ target: 'http://m', maxInFlight: 0 }, /options\.mirror\.maxInFlight must be a positive integer of copies/);
    refuses('not a url', /options\.mirror\.target must be an http: or https: URL/);
    refuses({ target: 'ftp://m' }, /options\.mirror\.target must be an http: or https: URL/);
    refuses({ target: ['http://m', 'nope'] }, /options\.mirror\.target\[1\] must be an http: or https: URL/);
    refuses({ target: [] }, /options\.mirror\.target must be an http: or https: URL or a non-empty array/);
    refuses({ fraction: 0.5 }, /options\.mirror\.target must be an http: or https: URL or an array of them \(required\)/);
    refuses({ target: 'http://m', fractoin: 0.5 }, /unknown option "mirror\.fractoin" — did you mean "mirror\.fraction"\?/);
    refuses({ target: 'http://m', filter: true }, /options\.mirror\.filter must be a function/);
    refuses({ target: 'http://m', keepHost: 'yes' }, /options\.mirror\.keepHost must be a boolean/);
    refuses(5, /options\.mirror must be a URL, a mirror policy object or an array of them/);
  });
});

/** The balancer as a request listener (a function), for `listen`. */
function frontOf(lb: ReturnType<typeof loadBalance>): http.RequestListener {
  return lb;
}
