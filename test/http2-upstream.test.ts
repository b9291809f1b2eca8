import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type LoadBalancer, loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { closeAll, deadPort, request, selfSignedCert } from './helpers.js';
import { echo, front, type H2Upstream, h2request, h2upstream } from './http2-upstream.js';

// The HTTP/2 engine against real node:http2 upstreams: requests from HTTP/1.1 and HTTP/2 clients go
// out as streams, balanced per request, with trailers relayed and the target configuration validated.

describe('HTTP/2 upstreams: requests from HTTP/1.1 clients', () => {
  let a: H2Upstream;
  let lb: LoadBalancer;
  let server: Awaited<ReturnType<typeof front>>;

  before(async () => {
    a = await h2upstream(echo('a'));
    lb = loadBalance({ targets: [a.url] });
    server = await front(lb);
  });
  after(async () => {
    await server.close();
    await lb.close();
    await closeAll(a);
  });

  test('a GET goes out as a stream: :authority from Host, forwarding headers added, connection-specific ones removed', async () => {
    const reply = await request(`${server.url}/echo?x=1`, {
      headers: { connection: 'keep-alive, x-private', 'x-private': 'hop', 'keep-alive': '5', 'x-custom': 'yes' },
    });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-backend'], 'a');
    const seen = JSON.parse(reply.body);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.path, '/echo?x=1');
    assert.equal(seen.authority, `127.0.0.1:${server.port}`);
    assert.equal(seen.headers['x-custom'], 'yes');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    for (const name of ['connection', 'keep-alive', 'x-private', 'host', 'transfer-encoding']) assert.equal(seen.headers[name], undefined, name);
  });

  test('a POST body streams through, chunked or with a length', async () => {
    const reply = await request(`${server.url}/echo`, { method: 'POST', body: 'hello h2', headers: { 'content-type': 'text/plain' } });
    assert.equal(JSON.parse(reply.body).body, 'hello h2');
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${server.url}/echo`, { method: 'PUT', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.write('one,');
      setTimeout(() => req.end('two'), 20);
    });
    assert.equal(JSON.parse(chunked).body, 'one,two');
  });

  test('`TE: trailers` is forwarded, and trailers reach an HTTP/1.1 client as chunked trailers', async () => {
    const raw = await rawExchange(server.port, 'GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 200/);
    assert.match(raw, /transfer-encoding: chunked/i);
    assert.match(raw, /with trailers\r\n0\r\n(?:[^\r]*\r\n)*grpc-status: 0\r\n/i);
    assert.match(raw, /x-checksum: abc123\r\n/i);
    assert.equal(a.seen.at(-1)?.te, 'trailers');
  });

  test('the target base path is prepended; changeOrigin sends the target as :authority', async () => {
    const based = loadBalance({ targets: [{ url: `http://127.0.0.1:${a.port}/v2`, http2: true }], changeOrigin: true });
    const other = await front(based);
    try {
      const seen = JSON.parse((await request(`${other.url}/users?id=1`)).body);
      assert.equal(seen.path, '/v2/users?id=1');
      assert.equal(seen.authority, `127.0.0.1:${a.port}`);
    } finally {
      await other.close();
      await based.close();
    }
  });

  test('WebSocket upgrades to an HTTP/2 target are refused with 502', async () => {
    const ws = http.createServer();
    ws.on('upgrade', lb.upgrade);
    await new Promise<void>((resolve) => ws.listen(0, '127.0.0.1', resolve));
    try {
      const port = (ws.address() as net.AddressInfo).port;
      const raw = await rawExchange(
        port,
        'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      assert.match(raw, /^HTTP\/1\.1 502/);
    } finally {
      await new Promise<void>((resolve) => ws.close(() => resolve()));
    }
  });
});

describe('HTTP/2 upstreams: requests from HTTP/2 clients', () => {
  const servers: H2Upstream[] = [];
  let lb: LoadBalancer;
  let server: Awaited<ReturnType<typeof front>>;
  let client: http2.ClientHttp2Session;

  before(async () => {
    for (const name of ['a', 'b', 'c']) servers.push(await h2upstream(echo(name)));
    lb = loadBalance({ targets: servers.map((s) => s.url) });
    server = await front(lb, true);
    client = http2.connect(server.url);
    client.on('error', () => {});
  });
  after(async () => {
    client.close();
    await server.close();
    await lb.close();
    await closeAll(...servers);
  });

  test("one client connection's requests are balanced per request over three h2 targets", async () => {
    const names: string[] = [];
    for (let i = 0; i < 9; i++) names.push((await h2request(client, { ':path': '/' })).headers['x-backend'] as string);
    assert.deepEqual([...names].sort(), ['a', 'a', 'a', 'b', 'b', 'b', 'c', 'c', 'c']);
    // One session per target carried them all.
    assert.deepEqual(
      servers.map((s) => s.opened),
      [1, 1, 1],
    );
  });

  test('concurrent requests on one client connection spread too', async () => {
    const replies = await Promise.all(Array.from({ length: 30 }, () => h2request(client, { ':path': '/' })));
    const counts = new Map<string, number>();
    for (const r of replies) counts.set(r.headers['x-backend'] as string, (counts.get(r.headers['x-backend'] as string) ?? 0) + 1);
    assert.deepEqual([...counts.values()], [10, 10, 10]);
  });

  test('bodies go both ways; trailers reach the h2 client', async () => {
    const reply = await h2request(client, { ':method': 'POST', ':path': '/echo', 'content-type': 'text/plain' }, 'from h2');
    assert.equal(JSON.parse(reply.body).body, 'from h2');
    const withTrailers = await h2request(client, { ':path': '/trailers', te: 'trailers' });
    assert.equal(withTrailers.body, 'with trailers');
    assert.equal(withTrailers.trailers?.['grpc-status'], '0');
    assert.equal(withTrailers.trailers?.['x-checksum'], 'abc123');
  });

  test('stats and the status page list each target with its protocol', async () => {
    assert.deepEqual(
      lb.stats().targets.map((t) => t.protocol),
      ['h2c', 'h2c', 'h2c'],
    );
  });
});

describe('HTTP/2 upstreams: the first request, while its session connects', () => {
  for (const h2 of [false, true]) {
    test(`its body is sent whole (${h2 ? 'HTTP/2' : 'HTTP/1.1'} client, retries on: the body recorder reads it meanwhile)`, async () => {
      const a = await h2upstream(echo('a'));
      const lb = loadBalance({ targets: [a.url] });
      const server = await front(lb, h2);
      const client = h2 ? http2.connect(server.url) : undefined;
      client?.on('error', () => {});
      try {
        const body = h2
          ? (await h2request(client!, { ':method': 'POST', ':path': '/echo' }, 'first body')).body
          : (await request(`${server.url}/echo`, { method: 'POST', body: 'first body' })).body;
        assert.equal(JSON.parse(body).body, 'first body');
      } finally {
        client?.close();
        await server.close();
        await lb.close();
        await closeAll(a);
      }
    });
  }
});

describe('HTTP/2 upstreams: failures', () => {
  test('a refused connect answers 502 (retried first), its error marked unprocessed with its code', async () => {
    const port = await deadPort();
    const lb = loadBalance({ targets: [`h2c://127.0.0.1:${port}`], outlierDetection: false });
    const errors: Error[] = [];
    lb.on('retry', (info) => errors.push(info.error as Error));
    const server = await front(lb);
    try {
      const reply = await request(`${server.url}/`);
      assert.equal(reply.status, 502);
      assert.equal(reply.body, 'Bad Gateway\n');
      assert.ok(errors.length > 0);
      assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      assert.equal((errors[0] as Error & { unprocessed?: boolean }).unprocessed, true);
    } finally {
      await server.close();
      await lb.close();
    }
  });

  test('REFUSED_STREAM is unprocessed: a GET moves to the next target', async () => {
    const refusing = await h2upstream((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const good = await h2upstream(echo('good'));
    const lb = loadBalance({ targets: [refusing.url, good.url], outlierDetection: false });
    const errors: Error[] = [];
    lb.on('retry', (info) => errors.push(info.error as Error));
    const server = await front(lb);
    try {
      for (let i = 0; i < 2; i++) assert.equal((await request(`${server.url}/`)).headers['x-backend'], 'good');
      assert.ok(errors.length >= 1);
      for (const err of errors) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ERR_HTTP2_REFUSED_STREAM');
        assert.equal((err as Error & { unprocessed?: boolean }).unprocessed, true);
      }
    } finally {
      await server.close();
      await lb.close();
      await closeAll(refusing, good);
    }
  });

  test('proxyTimeout bounds a silent h2 upstream: 504', async () => {
    const silent = await h2upstream(() => {});
    const lb = loadBalance({ targets: [silent.url], proxyTimeout: 100, retry: false, outlierDetection: false });
    const server = await front(lb);
    try {
      const started = Date.now();
      assert.equal((await request(`${server.url}/`)).status, 504);
      assert.ok(Date.now() - started < 2000);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(silent);
    }
  });
});

describe('HTTP/2 upstreams over TLS', () => {
  const CERT = selfSignedCert();
  let tls: H2Upstream;
  before(async () => {
    tls = await h2upstream(echo('tls'), { tls: { ...CERT } });
  });
  after(() => closeAll(tls));

  async function status(options: Partial<LoadBalanceOptions>): Promise<number> {
    const lb = loadBalance({ targets: [{ url: tls.url, http2: true }], retry: false, outlierDetection: false, ...options });
    const server = await front(lb);
    try {
      return (await request(`${server.url}/`)).status;
    } finally {
      await server.close();
      await lb.close();
    }
  }

  test('certificates are verified by default: a self-signed one fails (502) unless its CA is given', async () => {
    assert.equal(await status({}), 502);
    assert.equal(await status({ agentOptions: { ca: CERT.cert } }), 200);
    assert.equal(await status({ agentOptions: { rejectUnauthorized: false } }), 200);
  });

  test('SNI carries the target name; the balancer-level http2 option makes https: targets h2', async () => {
    let servername: string | undefined;
    tls.server.once('secureConnection', (socket: import('node:tls').TLSSocket) => (servername = (socket as unknown as { servername: string }).servername));
    const lb = loadBalance({ targets: [tls.url], http2: true, agentOptions: { ca: CERT.cert } });
    const server = await front(lb);
    try {
      const reply = await request(`${server.url}/`);
      assert.equal(reply.headers['x-backend'], 'tls');
      assert.equal(servername, 'localhost');
      assert.equal(lb.stats().targets[0]!.protocol, 'h2');
    } finally {
      await server.close();
      await lb.close();
    }
  });

  test('a TLS server that does not negotiate h2 over ALPN (HTTP/1.1 only, or no ALPN at all) is a clear 502', async () => {
    const { createServer } = await import('node:https');
    const tls = await import('node:tls');
    const https1 = createServer({ ...CERT }, (_req, res) => res.end('http/1.1 only'));
    const noAlpn = tls.createServer({ ...CERT }, (socket) => socket.on('error', () => {}).end('HTTP/1.1 200 OK\r\n\r\n'));
    // Node leaves open the TCP connection of an HTTP/2 session whose TLS peer chose no ALPN protocol
    // (the session is destroyed, its socket is not released): the server side closes them here.
    const sockets: net.Socket[] = [];
    for (const server of [https1, noAlpn]) {
      server.on('connection', (socket: net.Socket) => sockets.push(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    }
    try {
      for (const server of [https1, noAlpn]) {
        const port = (server.address() as net.AddressInfo).port;
        const lb = loadBalance({ targets: [{ url: `https://localhost:${port}`, http2: true }], agentOptions: { ca: CERT.cert }, retry: false });
        const front_ = await front(lb);
        try {
          assert.equal((await request(`${front_.url}/`)).status, 502);
        } finally {
          await front_.close();
          await lb.close();
        }
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => https1.close(() => resolve()));
      await new Promise<void>((resolve) => noAlpn.close(() => resolve()));
    }
  });
});

describe('HTTP/2 target configuration is validated at start-up', () => {
  const rows: Array<[string, Partial<LoadBalanceOptions>, RegExp]> = [
    ['h2c: with http2: false', { targets: [{ url: 'h2c://127.0.0.1:1', http2: false }] }, /targets\[0\]: http2 is false but the URL is h2c:/],
    ['http2 not a boolean (target)', { targets: [{ url: 'http://127.0.0.1:1', http2: 'yes' as never }] }, /targets\[0\]: http2 must be a boolean, got "yes"/],
    ['http2 not a boolean (balancer)', { http2: 1 as never }, /options\.http2 must be a boolean, got 1/],
    ['an unknown scheme', { targets: ['h3://127.0.0.1:1'] }, /must use http: or https: \(or h2c: for HTTP\/2 with prior knowledge\), got h3:/],
    ['http2Session not an object', { http2Session: 5 as never }, /options\.http2Session must be an object, got 5/],
    ['http2Session typo', { http2Session: { maxConcurentStreams: 5 } as never }, /http2Session\.maxConcurentStreams.*maxConcurrentStreams/],
    ['maxConcurrentStreams 0', { http2Session: { maxConcurrentStreams: 0 } }, /http2Session\.maxConcurrentStreams must be an integer from 1 to/],
    ['pingInterval negative', { http2Session: { pingInterval: -1 } }, /http2Session\.pingInterval must be a non-negative integer of milliseconds/],
    ['pingTimeout 0', { http2Session: { pingTimeout: 0 } }, /http2Session\.pingTimeout must be a positive integer of milliseconds/],
    [
      'idleTimeout a string',
      { http2Session: { idleTimeout: '1s' as never } },
      /http2Session\.idleTimeout must be a positive integer of milliseconds, got "1s"/,
    ],
  ];
  for (const [name, options, pattern] of rows) {
    test(name, () => {
      assert.throws(
        () => loadBalance({ targets: ['http://127.0.0.1:1'], ...options } as LoadBalanceOptions),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, String(err));
          assert.match(err.message, pattern);
          return true;
        },
      );
    });
  }

  test('valid forms: h2c: URL, { url, http2 } per target (http: → h2c, https: → h2), the balancer default, and a target opting out', async () => {
    const lb = loadBalance({
      targets: ['h2c://127.0.0.1:1', { url: 'http://127.0.0.1:2', http2: true }, { url: 'https://127.0.0.1:3', http2: true }, 'http://127.0.0.1:4'],
    });
    const all = loadBalance({ targets: ['http://127.0.0.1:1', { url: 'http://127.0.0.1:2', http2: false }], http2: true });
    try {
      assert.deepEqual(
        lb.stats().targets.map((t) => [t.url, t.protocol]),
        [
          ['http://127.0.0.1:1', 'h2c'],
          ['http://127.0.0.1:2', 'h2c'],
          ['https://127.0.0.1:3', 'h2'],
          ['http://127.0.0.1:4', 'http/1.1'],
        ],
      );
      assert.deepEqual(
        all.stats().targets.map((t) => t.protocol),
        ['h2c', 'http/1.1'],
      );
      // An h2c: URL names the same target as its http: form.
      assert.ok(lb.pool.get('h2c://127.0.0.1:1') !== undefined);
    } finally {
      await lb.close();
      await all.close();
    }
  });
});

/** Sends raw bytes and collects the answer until the server closes or 1 s passes. */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.write(data);
  });
}
