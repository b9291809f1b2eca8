import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { delay, waitFor } from '../helpers.js';
import { countingBackend, front, raw, type CountingBackend, type Front } from './harness.js';

// The request-integrity issue's attacks, as an attacker sends them: each must reach the backend as
// exactly the one request the balancer accepted, or not at all.

const SMUGGLED = 'GET /smuggled-admin HTTP/1.1\r\nHost: x\r\n\r\n';

function chunked(body: string): string {
  return `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}

function noTargetFailures(lb: LoadBalancer): void {
  for (const target of lb.stats().targets) {
    assert.equal(target.errors, 0, `${target.url} counted no failure`);
    assert.equal(target.state, 'up');
  }
}

for (const keepAlive of [true, false]) {
  describe(`HTTP/1.1 bodies of every method reach the backend framed (keepAlive ${keepAlive})`, () => {
    let backend: CountingBackend;
    let lb: LoadBalancer;
    let server: Front;

    before(async () => {
      backend = await countingBackend();
      lb = loadBalance({ targets: [backend.url], keepAlive });
      server = await front(lb);
    });
    after(async () => {
      await lb.close();
      await server.close();
      await backend.close();
    });

    // CVE-2026-29057: http-proxy's deleteLength pass sent these as Content-Length: 0 and piped the body.
    // REPORT: a method Node's parser knows beyond the usual ones (it refuses tokens it does not know).
    for (const method of ['DELETE', 'OPTIONS', 'GET', 'HEAD', 'TRACE', 'REPORT']) {
      test(`${method} with Transfer-Encoding: chunked carrying a request → one upstream request, body intact`, async () => {
        backend.arrivals.length = 0;
        const reply = await raw(
          server.port,
          `${method} /item HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(SMUGGLED)}`,
        );
        assert.equal(reply.statuses.length, 1, reply.text);
        assert.deepEqual(
          backend.arrivals.map((a) => a.url),
          ['/item'],
          'the body was never read as a request',
        );
        assert.equal(backend.arrivals[0]!.body, SMUGGLED);
        assert.equal(backend.arrivals[0]!.headers['transfer-encoding'], 'chunked');
        assert.equal(backend.arrivals[0]!.headers['content-length'], undefined);
      });
    }

    test('Transfer-Encoding written in another case is forwarded as chunked', async () => {
      backend.arrivals.length = 0;
      await raw(server.port, `DELETE /case HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ChUnKeD\r\nConnection: close\r\n\r\n${chunked(SMUGGLED)}`);
      assert.deepEqual(
        backend.arrivals.map((a) => [a.url, a.headers['transfer-encoding'], a.body]),
        [['/case', 'chunked', SMUGGLED]],
      );
    });

    test('a 2,100-field flood before Content-Length → 431, nothing upstream', async () => {
      backend.arrivals.length = 0;
      const before = backend.connections;
      let junk = '';
      for (let i = 0; i < 2100; i++) junk += `X-Junk-${i}: a\r\n`;
      const reply = await raw(server.port, `DELETE /admin/users/1 HTTP/1.1\r\nHost: x\r\n${junk}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`);
      assert.deepEqual(reply.statuses, [431]);
      assert.ok(reply.closedByServer);
      assert.equal(backend.arrivals.length, 0);
      assert.equal(backend.connections, before);
      noTargetFailures(lb);
    });
  });
}

describe('header field count: 100 by default, 431 past it', () => {
  let backend: CountingBackend;
  const balancers: LoadBalancer[] = [];
  const fronts: Front[] = [];

  before(async () => {
    backend = await countingBackend();
  });
  after(async () => {
    for (const lb of balancers) await lb.close();
    for (const f of fronts) await f.close();
    await backend.close();
  });

  async function setup(options: { maxHeaders?: number }): Promise<Front> {
    const lb = loadBalance({ targets: [backend.url], ...options });
    balancers.push(lb);
    const f = await front(lb);
    fronts.push(f);
    return f;
  }

  function withFields(count: number): string {
    // Host is one of them.
    let fields = 'Host: x\r\n';
    for (let i = 1; i < count; i++) fields += `X-F${i}: v\r\n`;
    return `GET /count HTTP/1.1\r\n${fields}Connection: close\r\n\r\n`;
  }

  test('99 fields plus Connection pass, 101 do not', async () => {
    const f = await setup({});
    backend.arrivals.length = 0;
    assert.deepEqual((await raw(f.port, withFields(99))).statuses, [200]);
    assert.deepEqual((await raw(f.port, withFields(100))).statuses, [431]);
    assert.equal(backend.arrivals.length, 1);
  });

  test('maxHeaders: 0 lifts the limit, but a head Node cut short at its own 2,000 entries is still 431', async () => {
    const f = await setup({ maxHeaders: 0 });
    backend.arrivals.length = 0;
    assert.deepEqual((await raw(f.port, withFields(300))).statuses, [200]);
    let junk = '';
    for (let i = 0; i < 2100; i++) junk += `X-Junk-${i}: a\r\n`;
    const reply = await raw(f.port, `DELETE /admin HTTP/1.1\r\nHost: x\r\n${junk}Content-Length: 5\r\n\r\nhello`);
    assert.deepEqual(reply.statuses, [431]);
    assert.deepEqual(
      backend.arrivals.map((a) => a.url),
      ['/count'],
    );
  });
});

describe('Host (RFC 9112 §3.2): one valid uri-host[:port] or 400', () => {
  let backend: CountingBackend;
  let lb: LoadBalancer;
  let server: Front;

  before(async () => {
    backend = await countingBackend();
    lb = loadBalance({ targets: [backend.url] });
    server = await front(lb, { insecureHTTPParser: true }, (s) => s.on('upgrade', lb.upgrade));
  });
  after(async () => {
    await lb.close();
    await server.close();
    await backend.close();
  });

  const BAD: Record<string, string> = {
    'two Host fields': 'Host: a.example\r\nHost: b.example\r\n',
    'two Host fields, same value': 'Host: a.example\r\nhost: a.example\r\n',
    'a slash': 'Host: h/static\r\n',
    'a question mark': 'Host: h?x\r\n',
    'a space': 'Host: h x\r\n',
    'userinfo (@)': 'Host: user@h\r\n',
    'a backslash': 'Host: h\\x\r\n',
    'a hash': 'Host: h#x\r\n',
    'a non-digit port': 'Host: h:80x\r\n',
    'an unclosed IPv6 literal': 'Host: [::1\r\n',
    'non-ASCII': 'Host: h\u00e9\r\n',
  };
  for (const [name, field] of Object.entries(BAD)) {
    test(`Host with ${name} → 400, nothing upstream`, async () => {
      backend.arrivals.length = 0;
      const before = backend.connections;
      const reply = await raw(server.port, `GET /static/app.js HTTP/1.1\r\n${field}Connection: close\r\n\r\n`);
      assert.deepEqual(reply.statuses, [400], reply.text);
      assert.equal(backend.arrivals.length, 0);
      assert.equal(backend.connections, before);
    });
  }

  for (const host of ['example.com', 'example.com:8080', 'a_b-c.example', '127.0.0.1:80', '[::1]:8080', '[::1]', 'xn--bcher-kva.example']) {
    test(`Host ${JSON.stringify(host)} is forwarded`, async () => {
      backend.arrivals.length = 0;
      const reply = await raw(server.port, `GET /ok HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.deepEqual(reply.statuses, [200], reply.text);
      assert.equal(backend.arrivals[0]?.headers.host, host);
    });
  }

  test('a WebSocket handshake declaring a body → 400, nothing upstream', async () => {
    backend.arrivals.length = 0;
    const reply = await raw(
      server.port,
      `GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
    );
    assert.deepEqual(reply.statuses, [400]);
    assert.equal(backend.arrivals.length, 0);
  });
});

describe('HTTP/2 front: bodies framed upstream, :authority is the Host', () => {
  let backend: CountingBackend;
  let lb: LoadBalancer;
  let server: http2.Http2Server;
  let session: http2.ClientHttp2Session;

  before(async () => {
    backend = await countingBackend();
    lb = loadBalance({ targets: [backend.url] });
    server = http2.createServer(lb);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    session.on('error', () => {});
  });
  after(async () => {
    session.close();
    await lb.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await backend.close();
  });

  /** The response status, or 'reset' when the stream was refused at the h2 layer. */
  function h2(headers: http2.OutgoingHttpHeaders, body?: string): Promise<number | 'reset'> {
    return new Promise((resolve) => {
      const stream = session.request(headers, { endStream: body === undefined });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', () => resolve('reset'));
      stream.resume();
      if (body !== undefined) stream.end(body);
    });
  }

  for (const method of ['GET', 'DELETE', 'OPTIONS', 'HEAD', 'POST', 'REPORT']) {
    test(`${method} with DATA and no content-length → one upstream request, sent chunked`, async () => {
      backend.arrivals.length = 0;
      assert.equal(await h2({ ':method': method, ':path': '/h2body' }, SMUGGLED), 200);
      assert.deepEqual(
        backend.arrivals.map((a) => [a.method, a.url, a.body, a.headers['transfer-encoding'], a.headers['content-length']]),
        [[method, '/h2body', SMUGGLED, 'chunked', undefined]],
      );
    });
  }

  test('a chunked h2 body cut by RST_STREAM never reaches the backend as complete', async () => {
    backend.arrivals.length = 0;
    const stream = session.request({ ':method': 'POST', ':path': '/cut' }, { endStream: false });
    stream.on('error', () => {});
    stream.write('part one');
    await waitFor(() => backend.arrivals.length === 1 && backend.arrivals[0]!.bytes > 0);
    // destroy(): RST_STREAM with no END_STREAM before it (close() ends the stream first, completing the body).
    stream.destroy();
    await waitFor(() => lb.stats().inFlight === 0);
    await delay(50);
    assert.deepEqual(
      backend.arrivals.map((a) => [a.url, a.complete]),
      [['/cut', false]],
    );
  });

  test('DELETE with DATA and a content-length → forwarded with that length', async () => {
    backend.arrivals.length = 0;
    assert.equal(await h2({ ':method': 'DELETE', ':path': '/h2len', 'content-length': String(SMUGGLED.length) }, SMUGGLED), 200);
    assert.deepEqual(
      backend.arrivals.map((a) => [a.url, a.body, a.headers['content-length'], a.headers['transfer-encoding']]),
      [['/h2len', SMUGGLED, String(SMUGGLED.length), undefined]],
    );
  });

  test('a host field naming another authority than :authority → 400, nothing upstream', async () => {
    backend.arrivals.length = 0;
    assert.equal(await h2({ ':method': 'GET', ':path': '/auth', ':authority': 'good.example', host: 'evil.example' }), 400);
    assert.equal(backend.arrivals.length, 0);
  });

  test(':authority becomes Host; a host field equal to it is accepted', async () => {
    backend.arrivals.length = 0;
    assert.equal(await h2({ ':method': 'GET', ':path': '/auth', ':authority': 'good.example' }), 200);
    assert.equal(await h2({ ':method': 'GET', ':path': '/auth', ':authority': 'good.example', host: 'GOOD.example' }), 200);
    assert.deepEqual(
      backend.arrivals.map((a) => a.headers.host),
      ['good.example', 'good.example'],
    );
  });

  test('an invalid :authority is refused (nghttp2 resets the stream); an invalid host field never reaches the backend', async () => {
    backend.arrivals.length = 0;
    assert.equal(await h2({ ':method': 'GET', ':path': '/auth', ':authority': 'h/static' }), 'reset');
    assert.equal(backend.arrivals.length, 0);
    // nghttp2 drops a regular field whose value it finds invalid: the request goes on with :authority alone.
    await h2({ ':method': 'GET', ':path': '/auth', ':authority': 'h', host: 'h/static' });
    assert.deepEqual(
      backend.arrivals.map((a) => a.headers.host),
      ['h'],
    );
    noTargetFailures(lb);
  });
});
