import assert from 'node:assert/strict';
import dns from 'node:dns';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { httpHealthCheck, loadBalance, type LoadBalanceOptions, type ResponseInfo, Target, tcpHealthCheck } from 'proxy-balancer';
import { closeAll, deadPort, listen, request, type TestServer } from './helpers.js';

/** Whether this machine can listen on the IPv6 loopback. */
async function hasIpv6Loopback(): Promise<boolean> {
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '::1', resolve));
    return true;
  } catch {
    return false;
  } finally {
    if (probe.listening) await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}

const ipv6 = await hasIpv6Loopback();
const resolved = (await dns.promises.lookup('localhost', { all: true })).map((a) => a.address);

/** A backend on one loopback address only, answering HTTP with the address it was reached on and echoing WebSocket messages. */
async function backendOn(host: string): Promise<TestServer & { wss: WebSocketServer }> {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${data}`)));
  const server = await listen((req, res) => res.end(`via ${req.socket.localAddress}`), http.createServer(), host);
  server.server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  return Object.assign(server, { wss });
}

function echoThrough(port: number, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    ws.once('error', reject);
    ws.once('open', () => ws.send(message));
    ws.once('message', (data) => {
      ws.close();
      resolve(String(data));
    });
  });
}

/** A client-to-server WebSocket text frame (masked, as clients must send them). */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x81;
  out[1] = 0x80 | payload.length;
  out.set([1, 2, 3, 4], 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! ^ out[2 + (i % 4)]!;
  return out;
}

/** An RFC 8441 WebSocket over an h2c front: the reply frame's text. */
async function echoOverHttp2(port: number, message: string): Promise<string> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    await new Promise<void>((resolve, reject) => session.once('remoteSettings', () => resolve()).once('error', reject));
    const stream = session.request(
      { ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/', ':scheme': 'http', 'sec-websocket-version': '13' },
      { endStream: false },
    );
    stream.on('error', () => {});
    const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
    assert.equal(status, 200);
    stream.write(maskedTextFrame(message));
    const frame = await new Promise<Buffer>((resolve) => stream.once('data', (c: Buffer) => resolve(c)));
    stream.close();
    return frame.subarray(2, 2 + frame[1]!).toString();
  } finally {
    // close() would wait for a stream a failed assertion left open.
    session.destroy();
  }
}

async function checkOnce(check: (target: Target, signal: AbortSignal) => Promise<boolean>, url: string): Promise<string> {
  try {
    return (await check(new Target(new URL(url), 1), new AbortController().signal)) ? 'ok' : 'false';
  } catch (error) {
    return (error as Error).message || String((error as { code?: string }).code);
  }
}

// Here the hosts file maps localhost to ${resolved}: a backend on the other family is what a
// resolver listing one family (or the other first, with Node ≥ 17's verbatim order) leaves unreachable.
for (const host of ['127.0.0.1', '::1']) {
  describe(`a localhost target whose backend listens on ${host} only (localhost resolves to ${resolved.join(', ')} here)`, {
    skip: host === '::1' && !ipv6 ? 'no IPv6 loopback on this machine' : false,
  }, () => {
    let backend: TestServer & { wss: WebSocketServer };
    before(async () => {
      backend = await backendOn(host);
    });
    after(async () => {
      for (const client of backend.wss.clients) client.terminate();
      await closeAll(backend);
    });

    test('proxies HTTP and WebSockets', async () => {
      const lb = loadBalance({ targets: [`http://localhost:${backend.port}`], retry: false });
      const front = await listen(lb);
      front.server.on('upgrade', lb.upgrade);
      try {
        const reply = await request(`${front.url}/`);
        assert.equal(reply.status, 200);
        assert.equal(reply.body, `via ${host}`);
        assert.equal(await echoThrough(front.port, 'hi'), 'echo:hi');
      } finally {
        await lb.close();
        await front.close();
      }
    });

    test('tunnels an HTTP/2 WebSocket (extended CONNECT)', { timeout: 5000 }, async () => {
      const lb = loadBalance({ targets: [`http://localhost:${backend.port}`], retry: false });
      const front = http2.createServer({ settings: { enableConnectProtocol: true } }, lb as never);
      front.on('connect', lb as never);
      await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
      try {
        assert.equal(await echoOverHttp2((front.address() as AddressInfo).port, 'hi'), 'echo:hi');
      } finally {
        await lb.close();
        await new Promise<void>((resolve) => front.close(() => resolve()));
      }
    });

    test('passes active HTTP and TCP health checks, directly and through the balancer', async () => {
      const url = `http://localhost:${backend.port}`;
      assert.equal(await checkOnce(httpHealthCheck().check, url), 'ok');
      assert.equal(await checkOnce(tcpHealthCheck().check, url), 'ok');
      for (const healthCheck of [httpHealthCheck({ interval: 50 }), tcpHealthCheck({ interval: 50 })]) {
        const lb = loadBalance({ targets: [url], healthCheck });
        try {
          await lb.firstHealthCheck();
          assert.deepEqual(
            lb.stats().targets.map((t) => [t.state, t.lastCheck?.detail]),
            [['up', 'ok']],
          );
        } finally {
          await lb.close();
        }
      }
    });
  });
}

describe('a localhost target nothing listens on', () => {
  test('the client gets a plain 502; the error, the response event and the health detail name every address tried', async () => {
    const port = await deadPort();
    const tried = ipv6 ? [`127.0.0.1:${port}`, `::1:${port}`] : [`127.0.0.1:${port}`];
    const hooked: Error[] = [];
    const options: LoadBalanceOptions = {
      targets: [`http://localhost:${port}`],
      retry: false,
      outlierDetection: false,
      on: { error: (err) => void hooked.push(err) },
    };
    const lb = loadBalance(options);
    const infos: ResponseInfo[] = [];
    lb.on('response', (info) => infos.push(info));
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(reply.status, 502);
      for (const address of ['127.0.0.1', '::1', String(port)]) assert.ok(!reply.body.includes(address), `the client is not told ${address}`);
      assert.equal(hooked.length, 1);
      assert.equal((hooked[0] as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      for (const address of tried) assert.ok(hooked[0]!.message.includes(address), `"${hooked[0]!.message}" names ${address}`);
      assert.equal(infos[0]?.error, hooked[0]);
      const detail = await checkOnce(tcpHealthCheck().check, `http://localhost:${port}`);
      for (const address of tried) assert.ok(detail.includes(address), `"${detail}" names ${address}`);
    } finally {
      await lb.close();
      await front.close();
    }
    const checked = loadBalance({ targets: [`http://localhost:${port}`], healthCheck: httpHealthCheck({ interval: 50 }) });
    try {
      await checked.firstHealthCheck();
      const detail = checked.stats().targets[0]?.lastCheck?.detail;
      assert.equal(detail, `ECONNREFUSED ${ipv6 ? `127.0.0.1:${port}, [::1]:${port}` : `127.0.0.1:${port}`}`);
    } finally {
      await checked.close();
    }
  });
});
