import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import connect from 'connect';
import { WebSocketServer } from 'ws';
import { type LoadBalancer, loadBalance, responseCache } from 'proxy-balancer';
import { closeAll, deadPort, listen, selfSignedCert, type TestServer, cacheOutcome } from './helpers.js';

const run = promisify(execFile);
const CERT = selfSignedCert();

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
}

function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let text = '';
    stream.on('response', (h) => (head = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: text, trailers }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

async function h2front(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  webSockets = false,
): Promise<{ port: number; url: string; close(): Promise<void> }> {
  const server = http2.createSecureServer({ ...CERT, allowHTTP1: true, settings: { enableConnectProtocol: webSockets } }, handler as never);
  // Node's compat API hands CONNECT streams (RFC 8441 WebSockets) to 'connect', not 'request'.
  if (webSockets) server.on('connect', handler as never);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `https://localhost:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A backend echoing what it saw: method, url, headers and body, as JSON; /trailers answers with a trailer. */
function echoBackend(name: string): Promise<TestServer> {
  return listen((req, res) => {
    if (req.url === '/trailers') {
      res.writeHead(200, { trailer: 'x-checksum' });
      res.write('with trailers');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
      return;
    }
    if (req.url === '/cached') {
      res.setHeader('cache-control', 'max-age=60');
      res.end(`cached from ${name}`);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
}

describe('HTTP/2 clients (Node http2 compat API in front)', () => {
  let a: TestServer;
  let lb: LoadBalancer;
  let front: Awaited<ReturnType<typeof h2front>>;
  let session: ClientHttp2Session;

  before(async () => {
    a = await echoBackend('a');
    lb = loadBalance({ targets: [a.url], cache: responseCache(), maxBodySize: 1000, allowedMethods: ['GET', 'HEAD', 'POST', 'PUT'] });
    front = await h2front(lb);
    session = http2.connect(front.url, { rejectUnauthorized: false });
  });
  after(async () => {
    session.close();
    await front.close();
    await lb.close();
    await closeAll(a);
  });

  test(':authority becomes Host upstream; pseudo-headers and connection headers are never forwarded', async () => {
    const reply = await h2request(session, { ':method': 'GET', ':path': '/echo?x=1', 'x-custom': 'yes' });
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body);
    assert.equal(seen.url, '/echo?x=1');
    assert.equal(seen.headers.host, `localhost:${front.port}`);
    assert.equal(seen.headers['x-custom'], 'yes');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.ok(
      Object.keys(seen.headers).every((name) => !name.startsWith(':')),
      Object.keys(seen.headers).join(),
    );
  });

  test('a request body is forwarded whole', async () => {
    const reply = await h2request(session, { ':method': 'POST', ':path': '/echo' }, 'h2 body');
    assert.equal(reply.status, 200);
    assert.equal(JSON.parse(reply.body).body, 'h2 body');
  });

  test('refusals go through the response API: 405 and 413 arrive as HTTP/2 responses', async () => {
    const refused = await h2request(session, { ':method': 'DELETE', ':path': '/echo' });
    assert.equal(refused.status, 405);
    assert.equal(refused.headers.allow, 'GET, HEAD, POST, PUT');
    assert.equal(refused.body, 'Method Not Allowed\n');
    const tooLarge = await h2request(session, { ':method': 'POST', ':path': '/echo' }, 'x'.repeat(5000));
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.headers.connection, undefined);
  });

  test('the cache answers HTTP/2 clients from entries stored for them (no pseudo-header stored)', async () => {
    const first = await h2request(session, { ':method': 'GET', ':path': '/cached' });
    const second = await h2request(session, { ':method': 'GET', ':path': '/cached' });
    assert.equal(cacheOutcome(first.headers), 'MISS');
    assert.equal(cacheOutcome(second.headers), 'HIT');
    assert.equal(second.body, 'cached from a');
  });

  test('trailers from the upstream reach an HTTP/2 client', async () => {
    const reply = await h2request(session, { ':method': 'GET', ':path': '/trailers', te: 'trailers' });
    assert.equal(reply.body, 'with trailers');
    assert.equal(reply.trailers?.['x-checksum'], 'abc123');
  });

  test('curl --http2 gets an h2 response with the upstream body', async () => {
    const { stdout } = await run('curl', ['--http2', '-sk', '-D', '-', `${front.url}/echo`], { encoding: 'utf8' });
    assert.match(stdout, /^HTTP\/2 200/);
    assert.match(stdout, /"url":"\/echo"/);
  });

  test('the HTTP/1.1 fallback (allowHTTP1) proxies as before', async () => {
    const { stdout } = await run('curl', ['--http1.1', '-sk', '-D', '-', `${front.url}/echo`], { encoding: 'utf8' });
    assert.match(stdout, /^HTTP\/1\.1 200 OK/);
    assert.match(stdout, /"url":"\/echo"/);
  });
});

describe('HTTP/2 clients: upstream failures and limits', () => {
  test('502 for a dead target, 503 + Retry-After with none ready, 504 on timeout, 429 from the rate limit', async () => {
    const dead = await deadPort();
    const slow = await listen(() => {});
    const to502 = loadBalance({ targets: [`http://127.0.0.1:${dead}`], retry: false, outlierDetection: false });
    const to503 = loadBalance({ targets: [], dynamic: true });
    const to504 = loadBalance({ targets: [slow.url], proxyTimeout: 200, retry: false, outlierDetection: false });
    const limited = loadBalance({ targets: [slow.url], rateLimit: { limit: 1, windowMs: 60_000 }, proxyTimeout: 100, retry: false });
    const app = connect();
    app.use('/502', to502);
    app.use('/503', to503);
    app.use('/504', to504);
    app.use('/429', limited);
    const front = await h2front(app as never);
    const session = http2.connect(front.url, { rejectUnauthorized: false });
    try {
      const bad = await h2request(session, { ':path': '/502/x' });
      assert.equal(bad.status, 502);
      assert.equal(bad.body, 'Bad Gateway\n');
      const none = await h2request(session, { ':path': '/503/x' });
      assert.equal(none.status, 503);
      assert.equal(none.headers['retry-after'], '1');
      const timeout = await h2request(session, { ':path': '/504/x' });
      assert.equal(timeout.status, 504);
      await h2request(session, { ':path': '/429/x' });
      const limitedReply = await h2request(session, { ':path': '/429/x' });
      assert.equal(limitedReply.status, 429);
      assert.ok(Number(limitedReply.headers['retry-after']) > 0);
      // The session survived every refusal.
      assert.equal(session.destroyed, false);
    } finally {
      session.close();
      await front.close();
      await Promise.all([to502.close(), to503.close(), to504.close(), limited.close()]);
      await closeAll(slow);
    }
  });

  test('a retry after a failed target replays the HTTP/2 request body on another target', async () => {
    const dead = await deadPort();
    const b = await echoBackend('b');
    const lb = loadBalance({ targets: [`http://127.0.0.1:${dead}`, b.url], retry: { methods: ['POST'] }, outlierDetection: false });
    const front = await h2front(lb);
    const session = http2.connect(front.url, { rejectUnauthorized: false });
    try {
      for (let i = 0; i < 4; i++) {
        const reply = await h2request(session, { ':method': 'POST', ':path': '/echo' }, `body ${i}`);
        assert.equal(reply.status, 200);
        const seen = JSON.parse(reply.body);
        assert.equal(seen.name, 'b');
        assert.equal(seen.body, `body ${i}`);
      }
      assert.ok(lb.stats().retries >= 1);
    } finally {
      session.close();
      await front.close();
      await lb.close();
      await closeAll(b);
    }
  });
});

/** One masked client text frame (RFC 6455 §5.2), short payloads only. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

describe('WebSockets over HTTP/2 (RFC 8441 extended CONNECT)', () => {
  test('an h2 WebSocket reaches an HTTP/1.1 WebSocket backend and messages flow both ways', async () => {
    const upstream = await listen((_req, res) => res.end('not a websocket'));
    const wss = new WebSocketServer({ server: upstream.server });
    wss.on('connection', (ws, req) => ws.on('message', (data) => ws.send(`echo ${data} at ${req.url}`)));
    const lb = loadBalance({ targets: [upstream.url] });
    const front = await h2front(lb, true);
    const session = http2.connect(front.url, { rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      assert.equal(session.remoteSettings.enableConnectProtocol, true);
      const stream = session.request(
        { ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'https', 'sec-websocket-version': '13' },
        { endStream: false },
      );
      const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
      assert.equal(status, 200);
      assert.equal(lb.stats().inFlight, 1);
      stream.write(maskedTextFrame('hi'));
      const frame = await new Promise<Buffer>((resolve) => stream.once('data', (c: Buffer) => resolve(c)));
      assert.equal(frame[0], 0x81);
      assert.equal(frame.subarray(2, 2 + frame[1]!).toString(), 'echo hi at /chat');
      stream.close();
      await new Promise<void>((resolve) => stream.once('close', () => resolve()));
      const until = Date.now() + 2000;
      while (lb.stats().inFlight !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(lb.stats().inFlight, 0);
    } finally {
      session.close();
      await front.close();
      await lb.close();
      wss.close();
      await closeAll(upstream);
    }
  });

  test('a backend that refuses the handshake gets its status to the client; a plain CONNECT is refused 405', async () => {
    const upstream = await listen((_req, res) => {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('forbidden');
    });
    const lb = loadBalance({ targets: [upstream.url] });
    const front = await h2front(lb, true);
    const session = http2.connect(front.url, { rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      const refused = await h2request(session, { ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'https' }, '');
      assert.equal(refused.status, 403);
      assert.equal(refused.body, 'forbidden');
      const plain = await h2request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' }, '');
      assert.equal(plain.status, 405);
    } finally {
      session.close();
      await front.close();
      await lb.close();
      await closeAll(upstream);
    }
  });
});

describe('an HTTP/2 client that is gone', () => {
  test('clientGone sees a reset stream, which res.destroyed (undefined on the compat response) does not', async () => {
    const { clientGone } = await import('../lib/proxy/client-gone.js');
    let seen: ServerResponse | undefined;
    let onClose: () => void = () => {};
    const closed = new Promise<void>((resolve) => (onClose = resolve));
    const server = http2.createServer((_req, res) => {
      seen = res as unknown as ServerResponse;
      res.on('close', onClose);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    session.on('error', () => {});
    const stream = session.request({ ':path': '/' });
    stream.on('error', () => {});
    await new Promise<void>((resolve) => server.once('stream', () => setImmediate(resolve)));
    assert.equal(clientGone(seen!), false);
    stream.destroy();
    await closed;
    assert.equal(seen!.destroyed, undefined, "Node's compat response has no destroyed");
    assert.equal(clientGone(seen!), true);
    session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
