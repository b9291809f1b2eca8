import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import middie from '@fastify/middie';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import fastify from 'fastify';
import { fixRequestBody } from 'http-proxy-middleware';
import net, { type AddressInfo } from 'node:net';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { backend, closeAll, listen, request, type TestServer } from './helpers.js';

describe('hooks (on: proxyReq, proxyRes, error)', () => {
  test('proxyReq adds upstream headers, proxyRes rewrites the response head', async () => {
    const b = await backend('b');
    const lb = loadBalance({
      targets: [b.url],
      on: {
        proxyReq: (proxyReq) => proxyReq.setHeader('x-request-source', 'edge'),
        proxyRes: (proxyRes) => {
          proxyRes.headers['x-served-by'] = 'edge';
          delete proxyRes.headers['x-backend'];
        },
      },
    });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/echo`);
      assert.equal(JSON.parse(reply.body).headers['x-request-source'], 'edge');
      assert.equal(reply.headers['x-served-by'], 'edge');
      const plain = await request(`${front.url}/`);
      assert.equal(plain.headers['x-backend'], undefined);
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('error renders a custom error page; without an answer the default follows; a throwing hook is a warning', async () => {
    const gone = await listen(() => {});
    const url = gone.url;
    await gone.close();
    const custom = loadBalance({
      targets: [url],
      on: {
        error: (_err, _req, res) => {
          res.writeHead(503, { 'content-type': 'text/html' });
          res.end('<h1>We will be right back</h1>');
        },
      },
    });
    const silent = loadBalance({ targets: [url], on: { error: () => {} } });
    const throwing = loadBalance({
      targets: [url],
      on: {
        error: () => {
          throw new Error('hook bug');
        },
      },
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const fronts = await Promise.all([custom, silent, throwing].map((lb) => listen(lb)));
    try {
      const page = await request(`${fronts[0]!.url}/`);
      assert.equal(page.status, 503);
      assert.equal(page.body, '<h1>We will be right back</h1>');
      assert.equal((await request(`${fronts[1]!.url}/`)).status, 502);
      assert.equal((await request(`${fronts[2]!.url}/`)).status, 502);
      await new Promise((r) => setTimeout(r, 5));
      assert.match(warnings.map((w) => w.message).join('\n'), /on\.error hook threw: Error: hook bug/);
    } finally {
      process.off('warning', onWarning);
      for (const lb of [custom, silent, throwing]) await lb.close();
      await closeAll(...fronts);
    }
  });

  test('invalid hooks throw a TypeError naming the option', () => {
    assert.throws(() => loadBalance({ targets: ['http://127.0.0.1:1'], on: { proxyReq: 'x' } as never }), /options\.on\.proxyReq must be a function/);
    assert.throws(
      () => loadBalance({ targets: ['http://127.0.0.1:1'], on: { request: () => {} } as never }),
      /unknown option "on\.request" \(expected one of proxyReq, proxyRes, error\)/,
    );
  });
});

describe('body parsers before the balancer', () => {
  for (const [name, express] of [
    ['Express 5', express5],
    ['Express 4', express4],
  ] as const) {
    test(`${name}: JSON, urlencoded, raw and text bodies parsed upstream of the balancer are forwarded intact`, async () => {
      const b = await backend('b');
      const lb = loadBalance({ targets: [b.url] });
      const app = express()
        .use(express.json())
        .use(express.urlencoded({ extended: false }))
        .use(express.raw({ type: 'application/octet-stream' }))
        .use(express.text())
        .use('/api', lb);
      const front = await listen(app as never);
      try {
        const cases: Array<[string, string, (body: string) => void]> = [
          ['application/json', '{"user":"ada","tags":["a","b"]}', (body) => assert.deepEqual(JSON.parse(body), { user: 'ada', tags: ['a', 'b'] })],
          ['application/x-www-form-urlencoded', 'user=ada&lang=en', (body) => assert.equal(body, 'user=ada&lang=en')],
          ['application/octet-stream', 'raw\u0000bytes', (body) => assert.equal(body, 'raw\u0000bytes')],
          ['text/plain', 'hello text', (body) => assert.equal(body, 'hello text')],
        ];
        for (const [type, body, check] of cases) {
          const reply = await request(`${front.url}/api/echo`, { method: 'POST', body, headers: { 'content-type': type } });
          assert.equal(reply.status, 200, `${type} answered`);
          const echoed = JSON.parse(reply.body);
          check(echoed.body);
          assert.equal(Number(echoed.headers['content-length']), Buffer.byteLength(echoed.body), `${type}: Content-Length matches what was sent`);
        }
      } finally {
        await lb.close();
        await closeAll(front, b);
      }
    });
  }

  test('a parsed body is replayed on a retry', async () => {
    const rude = await listen((req) => req.socket.destroy());
    const b = await backend('b');
    const lb = loadBalance({ targets: [rude.url, b.url], retry: { methods: ['POST'] }, strategy: { name: 'first', pick: (t) => t[0] } });
    const front = await listen(express5().use(express5.json()).use(lb) as never);
    try {
      const reply = await request(`${front.url}/echo`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } });
      assert.equal(JSON.parse(JSON.parse(reply.body).body).n, 1);
    } finally {
      await lb.close();
      await closeAll(front, rude, b);
    }
  });
});

/**
 * A backend reading raw bytes: it answers once a request's Content-Length is in, after a pause
 * long enough for any bytes sent past it to arrive, and records everything the connection carried.
 */
async function byteBackend(): Promise<{ url: string; seen: Array<{ head: string; rest: string }>; close(): Promise<void> }> {
  const seen: Array<{ head: string; rest: string }> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let data = '';
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (answered || end === -1) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length - end - 4 < length) return;
      answered = true;
      setTimeout(() => {
        seen.push({ head: data.slice(0, end), rest: data.slice(end + 4) });
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      }, 50);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("http-proxy-middleware's fixRequestBody carried over", () => {
  for (const [name, express] of [
    ['Express 5', express5],
    ['Express 4', express4],
  ] as const) {
    test(`${name}: as on.proxyReq or inside a hook of yours, the body goes upstream once, framed by its own Content-Length`, async () => {
      const b = await byteBackend();
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.message);
      process.on('warning', onWarning);
      const direct = loadBalance({ targets: [b.url], on: { proxyReq: fixRequestBody } });
      const wrapped = loadBalance({
        targets: [b.url],
        on: {
          proxyReq: (proxyReq, req) => {
            proxyReq.setHeader('x-edge', '1');
            fixRequestBody(proxyReq, req);
          },
        },
      });
      const app = express()
        .use(express.json())
        .use(express.urlencoded({ extended: false }))
        .use('/direct', direct)
        .use('/wrapped', wrapped);
      const front = await listen(app as never);
      try {
        // querystring.stringify (fixRequestBody) writes 'q=a%20b'; the balancer sends 'q=a+b'.
        const cases: Array<[string, string, string]> = [
          ['application/json', '{"a":1}', '{"a":1}'],
          ['application/x-www-form-urlencoded', 'q=a+b', 'q=a+b'],
        ];
        for (const path of ['/direct', '/wrapped']) {
          for (const [type, body, sent] of cases) {
            b.seen.length = 0;
            const reply = await request(`${front.url}${path}/x`, { method: 'POST', body, headers: { 'content-type': type } });
            assert.equal(reply.status, 200, `${path} ${type}`);
            assert.equal(b.seen.length, 1, `${path} ${type}: one request upstream`);
            const [upstream] = b.seen;
            assert.equal(upstream!.rest, sent, `${path} ${type}: the body once, nothing after it`);
            assert.match(upstream!.head, new RegExp(`\r\ncontent-length: ${Buffer.byteLength(sent)}\r\n`, 'i'));
            if (path === '/wrapped') assert.match(upstream!.head, /\r\nx-edge: 1\r\n/i, "the rest of the user's hook ran");
          }
        }
        await new Promise((r) => setTimeout(r, 5));
        const fix = warnings.filter((w) => w.includes('fixRequestBody'));
        assert.equal(fix.length, 2, `one warning per balancer: ${fix.join(' | ')}`);
        assert.match(fix[0]!, /options\.on\.proxyReq is ignored/);
        assert.match(fix[1]!, /wrote to the upstream request; what it wrote was dropped/);
      } finally {
        process.off('warning', onWarning);
        await direct.close();
        await wrapped.close();
        await closeAll(front, b);
      }
    });
  }
});

describe('on.proxyReq and the request body', () => {
  test('a hook writing to a streamed body (no parser) or changing its framing cannot add bytes past Content-Length; retries too', async () => {
    const b = await byteBackend();
    const rude = await listen((req) => req.socket.destroy());
    const lb = loadBalance({
      targets: [rude.url, b.url],
      // The first attempt goes to a backend that resets it; the retry replays the body to the other.
      strategy: { name: 'first', pick: (targets) => targets[0] },
      retry: { methods: ['POST'] },
      on: {
        proxyReq: (proxyReq) => {
          // http-proxy runs the hook once the upstream socket is assigned: a streamed body may have sent the head already.
          if (!proxyReq.headersSent) proxyReq.setHeader('content-length', '999');
          proxyReq.write('smuggled');
          proxyReq.end('GET /admin HTTP/1.1\r\n\r\n');
        },
      },
    });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/x`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
      assert.equal(reply.status, 200);
      assert.equal(b.seen.length, 1);
      assert.equal(b.seen[0]!.rest, 'hello');
      assert.match(b.seen[0]!.head, /\r\ncontent-length: 5\r\n/i);
      assert.equal(lb.stats().retries, 1, 'the body reached the backend on a retry');
    } finally {
      await lb.close();
      await closeAll(front, rude, b);
    }
  });
});

describe('framework matrix', () => {
  async function check(lb: LoadBalancer, front: TestServer, prefix: string): Promise<void> {
    const first = JSON.parse((await request(`${front.url}${prefix}/echo/x?y=1`, { method: 'POST', body: 'payload' })).body);
    const second = JSON.parse((await request(`${front.url}${prefix}/echo/x?y=1`)).body);
    assert.equal(first.url, '/echo/x?y=1');
    assert.equal(first.body, 'payload');
    assert.notEqual(first.name, second.name, 'balanced over both backends');
    assert.equal(lb.stats().inFlight, 0);
  }

  test('Fastify through @fastify/middie', async () => {
    const backends = await Promise.all(['a', 'b'].map(backend));
    const lb = loadBalance({ targets: backends.map((b) => b.url) });
    const app = fastify();
    await app.register(middie);
    app.use('/api', lb);
    app.get('/local', async () => 'fastify route');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address() as { port: number };
    const front = { url: `http://127.0.0.1:${address.port}` } as TestServer;
    try {
      await check(lb, front, '/api');
      assert.equal((await request(`${front.url}/local`)).body, 'fastify route');
    } finally {
      await lb.close();
      await app.close();
      await closeAll(...backends);
    }
  });

  test('Connect, Express 4, Express 5 and bare node:http with the same balancer options', async () => {
    const backends = await Promise.all(['a', 'b'].map(backend));
    try {
      for (const mount of [
        (lb: LoadBalancer) => connect().use('/api', lb),
        (lb: LoadBalancer) => express4().use('/api', lb),
        (lb: LoadBalancer) => express5().use('/api', lb),
      ]) {
        const lb = loadBalance({ targets: backends.map((b) => b.url) });
        const front = await listen(mount(lb) as never);
        try {
          await check(lb, front, '/api');
        } finally {
          await lb.close();
          await front.close();
        }
      }
      const lb = loadBalance({ targets: backends.map((b) => b.url) });
      const front = await listen(lb);
      try {
        await check(lb, front, '');
      } finally {
        await lb.close();
        await front.close();
      }
    } finally {
      await closeAll(...backends);
    }
  });
});
