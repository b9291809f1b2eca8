import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { loadBalance, type Strategy } from 'proxy-balancer';
import { backend, closeAll, deadPort, delay, listen, rawRequest, request, waitFor } from './helpers.js';

/** GETs `url` and reports how the response ended: complete, or cut (an error or an 'aborted' body). */
function fetchOutcome(url: string): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
    });
    req.on('error', reject);
  });
}

describe('upstream failures become proper status codes', () => {
  test('connection refused → 502 without the backend address', async () => {
    const port = await deadPort();
    const lb = loadBalance({ targets: [`http://127.0.0.1:${port}`] });
    const front = await listen(lb);
    try {
      const began = performance.now();
      const reply = await request(`${front.url}/x`);
      const took = performance.now() - began;
      assert.equal(reply.status, 502);
      assert.equal(reply.body, 'Bad Gateway\n');
      assert.ok(!JSON.stringify(reply).includes(String(port)), 'no backend port in the answer');
      assert.equal(reply.headers['cache-control'], 'no-store');
      // The attempt and two retries on the same target (no other is ready; the back-off is on by
      // default), then a try every 100 ms (retry.interval) within retry.tryDuration (1 s).
      const errors = lb.stats().targets[0]!.errors;
      assert.ok(errors >= 9 && errors <= 12, `${errors} attempts`);
      assert.ok(took >= 800 && took < 1500, `502 after ${took.toFixed(0)} ms, within tryDuration`);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('upstream resets the connection before answering → 502', async () => {
    const rude = await listen((req) => req.socket.destroy());
    const lb = loadBalance({ targets: [rude.url] });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 502);
    } finally {
      await lb.close();
      await closeAll(front, rude);
    }
  });

  test('silent upstream → 504 after proxyTimeout', async () => {
    const silent = await listen(() => {});
    const lb = loadBalance({ targets: [silent.url], proxyTimeout: 150 });
    const front = await listen(lb);
    try {
      const started = Date.now();
      const reply = await request(`${front.url}/`);
      const elapsed = Date.now() - started;
      assert.equal(reply.status, 504);
      assert.equal(reply.body, 'Gateway Timeout\n');
      assert.ok(elapsed >= 140 && elapsed < 2000, `answered after ${elapsed} ms`);
      await waitFor(() => silent.sockets.size === 0);
      assert.equal(silent.sockets.size, 0, 'the timed-out upstream socket is closed');
    } finally {
      await lb.close();
      await closeAll(front, silent);
    }
  });

  test('an upstream that keeps trickling still meets the `timeout` deadline → 504', async () => {
    const slow = await listen((_req, res) => {
      const timer = setTimeout(() => res.end('late'), 1000);
      res.on('close', () => clearTimeout(timer));
    });
    const lb = loadBalance({ targets: [slow.url], timeout: 100 });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 504);
    } finally {
      await lb.close();
      await closeAll(front, slow);
    }
  });

  for (const framing of ['content-length', 'chunked'] as const) {
    test(`an upstream dying mid-body (${framing}) never yields a complete response`, async () => {
      const dying = await listen((_req, res) => {
        if (framing === 'content-length') res.setHeader('content-length', 1000);
        res.write('x'.repeat(100));
        setTimeout(() => res.socket?.destroy(), 30);
      });
      const lb = loadBalance({ targets: [dying.url] });
      const front = await listen(lb);
      try {
        const outcome = await fetchOutcome(`${front.url}/`);
        assert.equal(outcome.status, 200);
        assert.equal(outcome.complete, false, 'the client sees the cut');
        assert.equal(outcome.body.length, 100);
      } finally {
        await lb.close();
        await closeAll(front, dying);
      }
    });
  }

  test('an upstream stalling mid-body is cut after proxyTimeout', async () => {
    const stalling = await listen((_req, res) => {
      res.setHeader('content-length', 1000);
      res.write('x'.repeat(10));
    });
    const lb = loadBalance({ targets: [stalling.url], proxyTimeout: 150 });
    const front = await listen(lb);
    try {
      const outcome = await fetchOutcome(`${front.url}/`);
      assert.equal(outcome.complete, false);
    } finally {
      await lb.close();
      await closeAll(front, stalling);
    }
  });

  test('a client that aborts aborts its upstream request too', async () => {
    let upstreamClosed = false;
    const slow = await listen((req, res) => {
      res.write('start');
      req.on('close', () => (upstreamClosed = true));
    });
    const lb = loadBalance({ targets: [slow.url] });
    const front = await listen(lb);
    try {
      await new Promise<void>((resolve) => {
        const req = http.get(`${front.url}/`, { agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => {});
      });
      await waitFor(() => upstreamClosed && lb.stats().inFlight === 0);
      assert.ok(upstreamClosed, 'the backend saw its request end');
      assert.equal(lb.stats().inFlight, 0);
      await waitFor(() => slow.sockets.size === 0);
      assert.equal(slow.sockets.size, 0, 'no upstream socket left behind');
    } finally {
      await lb.close();
      await closeAll(front, slow);
    }
  });

  test('a client leaving while the upstream thinks (request already complete) frees the upstream', async () => {
    let upstreamClosed = false;
    const thinking = await listen((req) => req.socket.on('close', () => (upstreamClosed = true)));
    const lb = loadBalance({ targets: [thinking.url] });
    const front = await listen(lb);
    try {
      const req = http.get(`${front.url}/`, { agent: false });
      req.on('error', () => {});
      await waitFor(() => thinking.hits === 1);
      req.destroy();
      await waitFor(() => upstreamClosed);
      assert.ok(upstreamClosed);
      await waitFor(() => lb.stats().inFlight === 0);
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      await lb.close();
      await closeAll(front, thinking);
    }
  });
});

describe('nothing to send to → 503 with Retry-After', () => {
  test('an empty dynamic pool answers 503 at once', async () => {
    const lb = loadBalance({ targets: [], dynamic: true, retryAfter: 7 });
    const front = await listen(lb);
    try {
      const started = performance.now();
      const reply = await request(`${front.url}/`);
      assert.ok(performance.now() - started < 50);
      assert.equal(reply.status, 503);
      assert.equal(reply.headers['retry-after'], '7');
      assert.equal(lb.stats().unavailable, 1);
      const head = await request(`${front.url}/`, { method: 'HEAD' });
      assert.equal(head.status, 503);
      assert.equal(head.body, '');
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('a strategy returning no target yields 503', async () => {
    const b = await backend('b');
    const refuseAll: Strategy = { name: 'refuse-all', pick: () => undefined };
    const lb = loadBalance({ targets: [b.url], strategy: refuseAll });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 503);
      assert.equal(reply.headers['retry-after'], '1');
      assert.equal(b.hits, 0);
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('after close() new requests get 503 while in-flight ones finish', async () => {
    const slow = await listen((_req, res) => setTimeout(() => res.end('done'), 100));
    const lb = loadBalance({ targets: [slow.url] });
    const front = await listen(lb);
    try {
      const inFlight = request(`${front.url}/`);
      await waitFor(() => slow.hits === 1);
      const closing = lb.close();
      const refused = await request(`${front.url}/`);
      assert.equal(refused.status, 503);
      assert.equal((await inFlight).body, 'done');
      await closing;
      await delay(10);
    } finally {
      await closeAll(front, slow);
    }
  });
});

describe('failure accounting', () => {
  test('a truncated upstream body counts as a failed attempt', async () => {
    const dying = await listen((_req, res) => {
      res.setHeader('content-length', 1000);
      res.write('x'.repeat(10));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const ends: Array<{ status: number; error: Error | undefined }> = [];
    const lb = loadBalance({
      targets: [dying.url],
      outlierDetection: false,
      strategy: { name: 'only', pick: (t) => t[0], onEnd: (_t, outcome) => void ends.push({ status: outcome.status, error: outcome.error }) },
    });
    const front = await listen(lb);
    try {
      await new Promise<void>((resolve) => {
        http
          .get(`${front.url}/`, { agent: false }, (res) => {
            res.resume();
            res.on('error', () => resolve());
            res.on('close', () => resolve());
          })
          .on('error', () => resolve());
      });
      await waitFor(() => ends.length === 1);
      assert.equal(ends[0]!.status, 200);
      assert.match(String(ends[0]!.error?.message), /before its body was complete/);
      assert.equal(lb.stats().targets[0]!.errors, 1);
    } finally {
      await lb.close();
      await closeAll(front, dying);
    }
  });

  test('OPTIONS * is answered 400, not counted as unavailable', async () => {
    const b = await backend('b');
    const lb = loadBalance({ targets: [b.url] });
    const front = await listen(lb);
    try {
      const raw = await rawRequest(front.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 400 /);
      assert.equal(lb.stats().unavailable, 0);
      assert.equal(b.hits, 0);
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('the error hook also answers a request whose deadline passed before its upstream request existed; close() twice is one close', async () => {
    const b = await backend('b');
    // A queue-free way to have no upstream request yet: an agent with no free socket.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const slow = await listen((_req, res) => setTimeout(() => res.end('slow'), 300));
    const lb = loadBalance({
      targets: [slow.url],
      agent,
      timeout: 100,
      retry: false,
      on: { error: (_err, _req, res) => void (res.writeHead(504, { 'x-custom': 'yes' }), res.end('custom timeout page')) },
    });
    const front = await listen(lb);
    try {
      const [first, second] = await Promise.all([request(`${front.url}/`), request(`${front.url}/`)]);
      for (const reply of [first, second]) {
        assert.equal(reply.status, 504);
        assert.equal(reply.headers['x-custom'], 'yes');
      }
      const closes = [lb.close(), lb.close()];
      assert.equal(closes[0], closes[1]);
      await Promise.all(closes);
    } finally {
      await lb.close();
      agent.destroy();
      await closeAll(front, slow, b);
    }
  });
});
