import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { closeAll, listen, rawRequest, type TestServer } from './helpers.js';

const GAP = 200;

/** One gRPC length-prefixed message (uncompressed). */
function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

// gRPC's wire shape (status in trailers, messages streamed) over the HTTP/1.1 upstream the
// balancer speaks; a real gRPC server speaks h2 only (see docs/proxying.md, HTTP/2 clients in detail).
describe('TE: trailers forwarded, trailers relayed (gRPC-shaped exchanges)', () => {
  let backend: TestServer;
  let lb: LoadBalancer;
  let front: http2.Http2Server;
  let port = 0;
  const seen: IncomingHttpHeaders[] = [];
  let secondSent = 0;

  before(async () => {
    backend = await listen((req, res) => {
      seen.push(req.headers);
      req.resume();
      // Like servers that only trail when the client said it can take them.
      const trails = /\btrailers\b/.test(String(req.headers.te));
      res.writeHead(200, { 'content-type': 'application/grpc', ...(trails ? { trailer: 'grpc-status, grpc-message' } : {}) });
      res.write(frame('first'));
      const timer = setTimeout(() => {
        secondSent = performance.now();
        res.write(frame('second'));
        if (trails) res.addTrailers(req.url === '/test.Echo/Missing' ? { 'grpc-status': '5', 'grpc-message': 'no%20such%20thing' } : { 'grpc-status': '0' });
        res.end();
      }, GAP);
      res.on('close', () => clearTimeout(timer));
    });
    lb = loadBalance({ targets: [backend.url] });
    front = http2.createServer(lb as never);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    port = (front.address() as AddressInfo).port;
  });
  after(async () => {
    await lb.close();
    await new Promise<void>((resolve) => front.close(() => resolve()));
    await closeAll(backend);
  });

  function call(path: string, te: string | undefined) {
    return new Promise<{ first: number; trailers: IncomingHttpHeaders | undefined; messages: number }>((resolve, reject) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on('error', reject);
      const start = performance.now();
      const stream = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        ...(te === undefined ? {} : { te }),
      });
      let first = Number.NaN;
      let bytes = 0;
      let trailers: IncomingHttpHeaders | undefined;
      stream.on('data', (chunk: Buffer) => {
        if (Number.isNaN(first)) first = performance.now();
        bytes += chunk.length;
      });
      stream.on('trailers', (t) => (trailers = t));
      stream.on('error', reject);
      stream.on('close', () => {
        session.close();
        resolve({ first: first - start, trailers, messages: bytes === frame('first').length + frame('second').length ? 2 : -1 });
      });
      stream.end(frame('request'));
    });
  }

  test('an h2 client sending te: trailers gets grpc-status and grpc-message, the first message before the second is sent', async () => {
    seen.length = 0;
    const start = performance.now();
    const ok = await call('/test.Echo/Stream', 'trailers');
    assert.equal(seen[0]?.te, 'trailers');
    assert.match(seen[0]?.connection ?? '', /^keep-alive, te$/);
    assert.equal(ok.messages, 2);
    assert.equal(ok.trailers?.['grpc-status'], '0');
    assert.ok(ok.first < secondSent - start - GAP / 2, `first message at ${ok.first} ms, second sent at ${secondSent - start} ms`);
    const missing = await call('/test.Echo/Missing', 'trailers');
    assert.deepEqual([missing.trailers?.['grpc-status'], missing.trailers?.['grpc-message']], ['5', 'no%20such%20thing']);
  });

  test('without TE nothing is said upstream, and no trailers come back', async () => {
    seen.length = 0;
    const none = await call('/test.Echo/Stream', undefined);
    assert.equal(seen[0]?.te, undefined);
    assert.equal(none.messages, 2);
    assert.equal(none.trailers, undefined);
  });

  test('an HTTP/1.1 client with TE: trailers gets them in its chunked response', async () => {
    seen.length = 0;
    const h1 = await listen(lb);
    try {
      const reply = await rawRequest(
        h1.port,
        'POST /test.Echo/Stream HTTP/1.1\r\nHost: x\r\nTE: trailers, deflate;q=0.5\r\nConnection: TE, close\r\nContent-Length: 0\r\n\r\n',
        GAP * 3,
      );
      assert.equal(seen.at(-1)?.te, 'trailers');
      assert.match(reply, /\r\n0\r\ngrpc-status: 0\r\n\r\n$/);
      // Transfer codings are the balancer's to choose (it asks for none): only trailers is passed on.
      await rawRequest(h1.port, 'POST /test.Echo/Stream HTTP/1.1\r\nHost: x\r\nTE: gzip\r\nConnection: TE, close\r\nContent-Length: 0\r\n\r\n', GAP * 3);
      assert.equal(seen.at(-1)?.te, undefined);
    } finally {
      await h1.close();
    }
  });
});
