import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { countingBackend, front, raw, type CountingBackend, type Front } from './harness.js';

// Every case runs against two fronts: Node's default parser, which refuses most of these itself
// before the balancer runs, and `insecureHTTPParser: true`, which lets them through to the
// balancer's own checks. Either way the client must get 400 and the backend nothing.
const SMUGGLING: Record<string, string> = {
  'CL.TE (Content-Length and Transfer-Encoding, smuggled prefix)':
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED',
  'TE.CL (Transfer-Encoding then Content-Length, smuggled request in the chunk)':
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST /admin HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n',
  'duplicate Content-Length, same value': 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc',
  'duplicate Content-Length, different values': 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 8\r\n\r\nabcGET / ',
  'Content-Length list': 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc',
  'duplicate Transfer-Encoding': 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'Transfer-Encoding not ending in chunked': 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'Transfer-Encoding: xchunked': 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'space before the colon of Transfer-Encoding': 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'obs-fold inside Transfer-Encoding': 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'Transfer-Encoding in HTTP/1.0': 'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'bare CR in a header value (CRLF injection)': 'GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\rX-Injected: b\r\n\r\n',
  'NUL in a header value': 'GET / HTTP/1.1\r\nHost: x\r\nX-Foo: a\u0000b\r\n\r\n',
};

for (const insecureHTTPParser of [false, true]) {
  describe(`request smuggling and header injection (${insecureHTTPParser ? "insecureHTTPParser: the balancer's own checks" : "Node's default parser"})`, () => {
    let backend: CountingBackend;
    let lb: LoadBalancer;
    let server: Front;

    before(async () => {
      backend = await countingBackend();
      lb = loadBalance({ targets: [backend.url] });
      server = await front(lb, { insecureHTTPParser });
    });

    after(async () => {
      await lb.close();
      await server.close();
      await backend.close();
    });

    for (const [name, payload] of Object.entries(SMUGGLING)) {
      test(`${name} → 400, connection closed, nothing reaches the backend`, async () => {
        const before = backend.connections;
        const reply = await raw(server.port, payload);
        assert.deepEqual(reply.statuses, [400], `one 400 and no second response from a smuggled request: ${JSON.stringify(reply.text)}`);
        assert.ok(reply.closedByServer, 'the connection is closed after the 400');
        assert.ok(!reply.text.includes(String(backend.port)), 'no backend address in the answer');
        assert.equal(backend.connections, before, 'the backend was never connected to');
        assert.equal(backend.arrivals.length, 0, 'no request reached the backend');
      });
    }

    test('obs-fold in an ordinary header: refused (400), or unfolded onto one line before forwarding', async () => {
      const reply = await raw(server.port, 'GET /fold HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\n folded\r\nConnection: close\r\n\r\n');
      if (insecureHTTPParser) {
        assert.deepEqual(reply.statuses, [200]);
        const arrival = backend.arrivals.find((a) => a.url === '/fold');
        assert.ok(arrival, 'forwarded');
        assert.equal(arrival.headers['x-foo'], 'a folded', 'RFC 9112 §5.2: obs-fold replaced by a space');
      } else {
        assert.deepEqual(reply.statuses, [400]);
        assert.equal(backend.arrivals.filter((a) => a.url === '/fold').length, 0);
      }
    });

    test('bare LF in a header value: refused, or split into separate fields; no CR/LF ever reaches the backend inside a value', async () => {
      const reply = await raw(server.port, 'GET /lf HTTP/1.1\r\nHost: x\r\nX-Foo: a\nX-Injected: b\r\nConnection: close\r\n\r\n');
      const arrivals = backend.arrivals.filter((a) => a.url === '/lf');
      if (insecureHTTPParser) {
        assert.deepEqual(reply.statuses, [200]);
        assert.equal(arrivals.length, 1);
        for (let i = 1; i < arrivals[0]!.rawHeaders.length; i += 2) assert.doesNotMatch(arrivals[0]!.rawHeaders[i]!, /[\r\n\0]/);
      } else {
        assert.deepEqual(reply.statuses, [400]);
        assert.equal(arrivals.length, 0);
      }
    });

    test('CRLF in the request target (read by Node as an HTTP/0.9 line with headers) → 400, nothing forwarded', async () => {
      const before = backend.connections;
      const reply = await raw(server.port, 'GET /crlf\r\nX-Injected: b HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.deepEqual(reply.statuses, [400]);
      assert.ok(reply.closedByServer);
      assert.equal(backend.connections, before);
      assert.equal(backend.arrivals.filter((a) => a.url.startsWith('/crlf')).length, 0);
    });

    test('absolute-form target: forwarded as origin-form to the configured target, the other host never chosen', async () => {
      const reply = await raw(server.port, 'GET http://other.example:9/x?y=1 HTTP/1.1\r\nHost: front.example\r\nConnection: close\r\n\r\n');
      assert.deepEqual(reply.statuses, [200]);
      const arrival = backend.arrivals.at(-1)!;
      assert.equal(arrival.url, '/x?y=1');
      assert.equal(arrival.headers.host, 'front.example', 'the client Host is relayed, not the URI authority');
    });

    test('a Host header naming another server does not change the upstream', async () => {
      const count = backend.arrivals.length;
      const reply = await raw(server.port, 'GET /host HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n');
      assert.deepEqual(reply.statuses, [200]);
      assert.equal(backend.arrivals.length, count + 1, 'the configured backend answered');
      assert.equal(backend.arrivals.at(-1)!.url, '/host');
    });

    test('a well-formed chunked request still goes through, body intact', async () => {
      const reply = await raw(
        server.port,
        'POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
      );
      assert.deepEqual(reply.statuses, [200]);
      const arrival = backend.arrivals.at(-1)!;
      assert.equal(arrival.url, '/chunked');
      assert.equal(arrival.body, 'abcde');
      assert.equal(arrival.headers['content-length'], undefined);
    });
  });
}
