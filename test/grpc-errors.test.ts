import assert from 'node:assert/strict';
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type LoadBalanceOptions, loadBalance } from 'proxy-balancer';
import { encodeGrpcMessage } from '../lib/grpc/status.js';
import { formatGrpcTimeout, parseGrpcTimeout } from '../lib/grpc/timeout.js';
import { DATA, END_STREAM, HEADERS, headers as headersFrame, rawH2 } from './abuse/h2-frames.js';
import { echoClient, failedCall, h2cFront, unaryCall } from './grpc.js';
import { h2upstream } from './http2-upstream.js';
import { closeAll, deadPort, delay, listen, request, waitFor } from './helpers.js';

// What the balancer answers on its own to gRPC calls: trailers-only responses with the gRPC status
// that says why (grpc's PROTOCOL-HTTP2 and statuscodes.md), whatever engine serves the targets.

const first = { name: 'first', pick: <T>(targets: readonly T[]) => targets[0] };

interface H2Reply {
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
}

function h2call(port: number, headers: OutgoingHttpHeaders, body?: Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('close', () => {
      session.close();
      resolve({ headers: head, body: Buffer.concat(chunks), trailers, rstCode: stream.rstCode });
    });
    stream.end(body ?? grpcFrame('hello'));
  });
}

/** One gRPC message: uncompressed flag, 4-byte length, bytes. */
function grpcFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

async function withFront(options: LoadBalanceOptions, run: (front: { port: number; address: string }) => Promise<void>): Promise<void> {
  const lb = loadBalance(options);
  const front = await h2cFront(lb);
  try {
    await run(front);
  } finally {
    await lb.close();
    await front.close();
  }
}

describe('gRPC calls the balancer answers itself', () => {
  test('no target reachable: UNAVAILABLE as one HEADERS frame that ends the stream, no DATA', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    await withFront({ targets: [dead], outlierDetection: false }, async (front) => {
      const client = echoClient(front.address);
      try {
        const err = await failedCall(unaryCall(client, 'x'));
        assert.equal(err.code, grpc.status.UNAVAILABLE);
        assert.equal(err.details, 'Bad Gateway');
      } finally {
        client.close();
      }
      const reply = await h2call(front.port, {});
      assert.equal(reply.headers[':status'], 200);
      assert.equal(reply.headers['content-type'], 'application/grpc');
      assert.equal(reply.headers['grpc-status'], '14');
      assert.equal(reply.body.length, 0);
      assert.equal(reply.trailers, undefined, 'trailers-only: the status is in the one header block');
      const names = Object.keys(reply.headers).filter((n) => !n.startsWith(':') && n !== 'date');
      assert.deepEqual(names.sort(), ['content-type', 'grpc-message', 'grpc-status']);

      const raw = await rawH2(front.port);
      try {
        raw.write(headersFrame(1, '/test.Echo/Unary', { method: 'POST', fields: { 'content-type': 'application/grpc', te: 'trailers' } }));
        await waitFor(() => raw.frames.some((f) => f.streamId === 1 && (f.flags & END_STREAM) !== 0));
        await delay(50);
        const frames = raw.frames.filter((f) => f.streamId === 1);
        assert.equal(frames.filter((f) => f.type === HEADERS).length, 1);
        assert.equal(frames[0]!.type, HEADERS);
        assert.ok((frames[0]!.flags & END_STREAM) !== 0, 'the HEADERS frame ends the stream');
        assert.equal(frames.filter((f) => f.type === DATA).length, 0, 'no DATA frame');
      } finally {
        raw.socket.destroy();
      }
    });
  });

  test('no target ready (every one down): UNAVAILABLE', async () => {
    const lb = loadBalance({ targets: ['http://127.0.0.1:1'], healthCheck: async () => false, outlierDetection: false });
    await lb.firstHealthCheck?.();
    const front = await h2cFront(lb);
    try {
      const reply = await h2call(front.port, {});
      assert.equal(reply.headers['grpc-status'], '14');
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('the deadline (timeout) passes: DEADLINE_EXCEEDED', async () => {
    const silent = await listen(() => {});
    await withFront({ targets: [silent.url], timeout: 100 }, async (front) => {
      const started = performance.now();
      const reply = await h2call(front.port, {});
      assert.equal(reply.headers['grpc-status'], '4');
      assert.equal(reply.headers['grpc-message'], 'Gateway Timeout');
      assert.ok(performance.now() - started < 1000);
    });
    await silent.close();
  });

  test('rate limited: RESOURCE_EXHAUSTED; ip filter: PERMISSION_DENIED; a body over maxBodySize: RESOURCE_EXHAUSTED', async () => {
    const ok = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.end());
    });
    await withFront({ targets: [ok.url], rateLimit: { limit: 1, windowMs: 60_000 } }, async (front) => {
      await h2call(front.port, {});
      const limited = await h2call(front.port, {});
      assert.equal(limited.headers[':status'], 200);
      assert.equal(limited.headers['grpc-status'], '8');
      assert.equal(limited.headers['retry-after'], undefined, 'nothing but the gRPC fields');
    });
    await withFront({ targets: [ok.url], ipFilter: { deny: ['127.0.0.1'] } }, async (front) => {
      assert.equal((await h2call(front.port, {})).headers['grpc-status'], '7');
    });
    await withFront({ targets: [ok.url], maxBodySize: 10 }, async (front) => {
      assert.equal((await h2call(front.port, {}, grpcFrame('x'.repeat(100)))).headers['grpc-status'], '8');
    });
    await ok.close();
  });

  test('circuit breaker open, connection queue full: UNAVAILABLE', async () => {
    const held: Array<() => void> = [];
    const slow = await listen((req, res) => {
      req.resume();
      held.push(() => res.end());
    });
    for (const options of [{ circuitBreaker: { maxRequests: 1 } }, { maxConnections: 1, maxQueue: 0 }]) {
      await withFront({ targets: [slow.url], ...options }, async (front) => {
        const first = h2call(front.port, {});
        await waitFor(() => held.length > 0);
        const refused = await h2call(front.port, {});
        assert.equal(refused.headers[':status'], 200);
        assert.equal(refused.headers['grpc-status'], '14');
        for (const release of held.splice(0)) release();
        await first;
      });
    }
    await slow.close();
  });

  test("a filter's refusal: its status mapped, its message percent-encoded as grpc-message", async () => {
    const ok = await listen((_req, res) => res.end());
    await withFront({ targets: [ok.url], filter: () => ({ status: 401, message: 'no token: 100% refusé' }) }, async (front) => {
      const reply = await h2call(front.port, {});
      assert.equal(reply.headers['grpc-status'], '16');
      assert.equal(reply.headers['grpc-message'], 'no token: 100%25 refus%C3%A9');
    });
    await ok.close();
  });

  test('a broken upstream head: INTERNAL; a body cut after the head went out: RST_STREAM INTERNAL_ERROR, no clean end', async () => {
    const broken = await listen((req, res) => {
      if (req.url === '/test.Echo/Cut') {
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.write(grpcFrame('partial'));
        setTimeout(() => (req.socket as Socket).destroy(), 20);
        return;
      }
      // An interim status as the final one: nothing Node will relay.
      (req.socket as Socket).end('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    });
    await withFront({ targets: [broken.url], retry: false }, async (front) => {
      assert.equal((await h2call(front.port, {})).headers['grpc-status'], '13');
      const cut = await h2call(front.port, { ':path': '/test.Echo/Cut' });
      assert.equal(cut.headers['grpc-status'], undefined);
      assert.equal(cut.trailers, undefined);
      assert.equal(cut.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
      const client = echoClient(front.address);
      try {
        const err = await failedCall(
          new Promise((resolve, reject) =>
            client.makeUnaryRequest(
              '/test.Echo/Cut',
              (b: Buffer) => b,
              (b: Buffer) => b,
              Buffer.from('x'),
              (e, r) => (e ? reject(e) : resolve(r)),
            ),
          ),
        );
        assert.equal(err.code, grpc.status.INTERNAL);
      } finally {
        client.close();
      }
    });
    await broken.close();
  });

  test('a plain h2 request is answered over HTTP as before; its body cut upstream is an RST_STREAM INTERNAL_ERROR', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    await withFront({ targets: [dead] }, async (front) => {
      const reply = await h2call(front.port, { 'content-type': 'application/grpc-web' });
      assert.equal(reply.headers[':status'], 502);
      assert.equal(reply.headers['grpc-status'], undefined);
      assert.equal(reply.body.toString(), 'Bad Gateway\n');
    });
    const cutting = await listen((req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('part');
      setTimeout(() => (req.socket as Socket).destroy(), 20);
    });
    await withFront({ targets: [cutting.url] }, async (front) => {
      const reply = await h2call(front.port, { ':method': 'GET', 'content-type': 'text/plain' }, Buffer.alloc(0));
      assert.equal(reply.headers[':status'], 200);
      assert.equal(reply.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    await cutting.close();
  });

  test('an HTTP/1.1 gRPC request gets the trailers-only fields as its head, with an empty body', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const lb = loadBalance({ targets: [dead] });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/test.Echo/Unary`, {
        method: 'POST',
        headers: { 'content-type': 'application/grpc+proto' },
        body: grpcFrame('x'),
      });
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['grpc-status'], '14');
      assert.equal(reply.headers['content-length'], '0');
      assert.equal(reply.body, '');
    } finally {
      await lb.close();
      await closeAll(front);
    }
  });

  test('grpc-message encoding: printable ASCII but % as is, everything else as UTF-8 percent-escapes', () => {
    assert.equal(encodeGrpcMessage('Bad Gateway'), 'Bad Gateway');
    assert.equal(encodeGrpcMessage('50% off\n'), '50%25 off%0A');
    assert.equal(encodeGrpcMessage('日'), '%E6%97%A5');
  });
});

describe('transparent retry: a request no target received moves on whatever its method', () => {
  test('a POST whose connect is refused goes to the next target (HTTP/1.1 engine), spending no retry budget', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const echo = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => res.end(`echo:${req.method}:${body}`));
    });
    const lb = loadBalance({ targets: [dead, echo.url], strategy: first, outlierDetection: false, retry: { backoff: false, budgetPercent: 0, minRetries: 0 } });
    const retries: unknown[] = [];
    lb.on('retry', (info) => retries.push(info));
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/order`, { method: 'POST', body: 'payload' });
      assert.equal(reply.body, 'echo:POST:payload');
      assert.equal(retries.length, 1);
    } finally {
      await lb.close();
      await closeAll(front, echo);
    }
  });

  test('retry.condition still vetoes it; retry: false turns it off', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const echo = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.end('echo'));
    });
    for (const retry of [{ condition: () => false }, false] as const) {
      const lb = loadBalance({ targets: [dead, echo.url], strategy: first, outlierDetection: false, retry });
      const front = await listen(lb);
      try {
        assert.equal((await request(`${front.url}/`, { method: 'POST', body: 'x' })).status, 502);
        assert.equal(echo.hits, 0);
      } finally {
        await lb.close();
        await closeAll(front);
      }
    }
    await echo.close();
  });

  test('a POST reset after it was sent is not retried (the target may have processed it)', async () => {
    const reset = await listen((req) => req.on('data', () => (req.socket as Socket).destroy()));
    const echo = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.end('echo'));
    });
    const lb = loadBalance({ targets: [reset.url, echo.url], strategy: first, outlierDetection: false, retry: { backoff: false } });
    const front = await listen(lb);
    try {
      assert.equal((await request(`${front.url}/`, { method: 'POST', body: 'x' })).status, 502);
      assert.equal(echo.hits, 0);
    } finally {
      await lb.close();
      await closeAll(front, reset, echo);
    }
  });

  test('a POST whose stream an HTTP/2 target refuses (REFUSED_STREAM) goes to the next target', async () => {
    const refusing = await h2upstream((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const serving = await h2upstream((stream) => {
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end('served');
      });
    });
    const lb = loadBalance({ targets: [refusing.url, serving.url], strategy: first, outlierDetection: false, retry: { backoff: false } });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/order`, { method: 'POST', body: 'payload' });
      assert.equal(reply.body, 'served');
      assert.equal(refusing.streams, 1);
      assert.equal(serving.streams, 1);
    } finally {
      await lb.close();
      await closeAll(front, refusing, serving);
    }
  });

  test('a gRPC call whose first target refuses the connection succeeds on the next', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    // An HTTP/1.1 target answering a gRPC-shaped response: enough to see the call moved on.
    const ok = await listen((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/grpc', trailer: 'grpc-status' });
        res.addTrailers({ 'grpc-status': '0' });
        res.end(grpcFrame('pong'));
      });
    });
    await withFront({ targets: [dead, ok.url], strategy: first, outlierDetection: false }, async (front) => {
      const reply = await h2call(front.port, {});
      assert.equal(reply.headers[':status'], 200);
      assert.equal(reply.trailers?.['grpc-status'], '0');
      assert.equal(ok.hits, 1);
    });
    await ok.close();
  });
});

describe('grpc-timeout', () => {
  test('parsed per gRPC (1–8 digits, H M S m u n) and written back in milliseconds', () => {
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('2M'), 120_000);
    assert.equal(parseGrpcTimeout('3S'), 3000);
    assert.equal(parseGrpcTimeout('250m'), 250);
    assert.equal(parseGrpcTimeout('1500u'), 1.5);
    assert.equal(parseGrpcTimeout('99999999n'), 99.999999);
    for (const bad of ['', 'm', '123456789m', '10x', '-5m', '1.5S', ' 5S']) assert.equal(parseGrpcTimeout(bad), undefined, bad);
    assert.equal(formatGrpcTimeout(1234.9), '1234m');
    assert.equal(formatGrpcTimeout(0.2), '1m');
    assert.equal(formatGrpcTimeout(200_000_000), '200000S');
  });

  test('bounds the deadline: DEADLINE_EXCEEDED once it passes, with no `timeout` configured', async () => {
    const silent = await listen(() => {});
    await withFront({ targets: [silent.url] }, async (front) => {
      const started = performance.now();
      const reply = await h2call(front.port, { 'grpc-timeout': '150m' });
      const took = performance.now() - started;
      assert.equal(reply.headers['grpc-status'], '4');
      assert.ok(took >= 140 && took < 1000, `answered after ${took} ms`);
    });
    await silent.close();
  });

  test('forwarded as it came, or as `timeout` when that is shorter', async () => {
    const seen: Array<string | undefined> = [];
    const ok = await listen((req, res) => {
      seen.push(req.headers['grpc-timeout'] as string | undefined);
      req.resume();
      req.on('end', () => res.end());
    });
    await withFront({ targets: [ok.url] }, async (front) => {
      await h2call(front.port, { 'grpc-timeout': '5S' });
    });
    await withFront({ targets: [ok.url], timeout: 2000 }, async (front) => {
      await h2call(front.port, { 'grpc-timeout': '10S' });
      await h2call(front.port, { 'grpc-timeout': '100m' });
      await h2call(front.port, { 'grpc-timeout': 'soon' });
    });
    assert.deepEqual(seen, ['5S', '2000m', '100m', 'soon']);
    await ok.close();
  });

  test('a retry forwards only the time left', async () => {
    const hanging = await listen((req) => {
      req.resume();
      setTimeout(() => (req.socket as Socket).destroy(), 300);
    });
    const seen: string[] = [];
    const ok = await listen((req, res) => {
      seen.push(req.headers['grpc-timeout'] as string);
      req.resume();
      req.on('end', () => res.end());
    });
    await withFront(
      { targets: [hanging.url, ok.url], strategy: first, outlierDetection: false, retry: { methods: ['POST'], backoff: false } },
      async (front) => {
        await h2call(front.port, { 'grpc-timeout': '5S' });
      },
    );
    assert.equal(seen.length, 1);
    const left = parseGrpcTimeout(seen[0]!)!;
    assert.ok(left > 4000 && left <= 4720, `forwarded ${seen[0]}`);
    await closeAll(hanging, ok);
  });
});
