import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { countingBackend, raw, type CountingBackend } from './abuse/harness.js';
import { closeAll, listen, request, handshakeHeadersSeen } from './helpers.js';

// What a client claiming to be someone else sends: backends take each as the client address.
const SPOOFED = { 'x-real-ip': '198.51.100.66', 'true-client-ip': '198.51.100.66', forwarded: 'for=198.51.100.66;proto=https' };

describe('client-address headers a client sends', () => {
  let backend: CountingBackend;
  before(async () => {
    backend = await countingBackend();
  });
  after(() => closeAll(backend));

  /** The headers the backend got for one request through a balancer with `options`. */
  async function arrived(options: Omit<LoadBalanceOptions, 'targets'>, headers: Record<string, string>): Promise<IncomingHttpHeaders> {
    const lb = loadBalance({ targets: [backend.url], ...options });
    const front = await listen(lb);
    try {
      const before = backend.arrivals.length;
      assert.equal((await request(`${front.url}/x`, { headers })).status, 200);
      assert.equal(backend.arrivals.length, before + 1);
      return backend.arrivals.at(-1)!.headers;
    } finally {
      await lb.close();
      await front.close();
    }
  }

  test('from an untrusted peer: X-Real-IP, True-Client-IP and Forwarded (forwarded off) are removed', async () => {
    const seen = await arrived({}, SPOOFED);
    assert.equal(seen['x-real-ip'], undefined);
    assert.equal(seen['true-client-ip'], undefined);
    assert.equal(seen.forwarded, undefined);
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  });

  test('without any: none is added (X-Forwarded-For says who the client is)', async () => {
    const seen = await arrived({}, {});
    assert.equal(seen['x-real-ip'], undefined);
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['true-client-ip'], undefined);
    assert.equal(seen.forwarded, undefined);
  });

  test('xForwarded: false removes the untrusted ones too', async () => {
    const seen = await arrived({ xForwarded: false }, SPOOFED);
    assert.equal(seen['x-real-ip'], undefined);
    assert.equal(seen['true-client-ip'], undefined);
    assert.equal(seen.forwarded, undefined);
    assert.equal(seen['x-forwarded-for'], undefined);
  });

  test('forwarded: true appends this hop to a client Forwarded, as to X-Forwarded-For (the backend believes the trusted hops only)', async () => {
    const seen = await arrived({ forwarded: true }, SPOOFED);
    assert.equal(seen.forwarded, `for=198.51.100.66;proto=https, for=127.0.0.1;host="${seen.host}";proto=http`);
  });

  test('from a trusted peer: its X-Real-IP, True-Client-IP and Forwarded go through', async () => {
    const seen = await arrived({ trustProxy: 'loopback' }, { ...SPOOFED, 'x-forwarded-for': '203.0.113.9' });
    assert.equal(seen['x-real-ip'], '198.51.100.66');
    assert.equal(seen['true-client-ip'], '198.51.100.66');
    assert.equal(seen.forwarded, SPOOFED.forwarded);
    const off = await arrived({ trustProxy: 'loopback', xForwarded: false }, SPOOFED);
    assert.equal(off['x-real-ip'], '198.51.100.66');
  });

  test('from a trusted peer without X-Real-IP: none is made up', async () => {
    const seen = await arrived({ trustProxy: 'loopback' }, { 'x-forwarded-for': '203.0.113.9' });
    assert.equal(seen['x-real-ip'], undefined);
    assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    const viaForwarded = await arrived({ trustProxy: 'loopback', trustedHeader: 'forwarded' }, { forwarded: 'for=203.0.113.10' });
    assert.equal(viaForwarded.forwarded, 'for=203.0.113.10');
  });

  test('WebSocket handshakes get the same treatment', async () => {
    const seen = await handshakeHeadersSeen(SPOOFED);
    assert.equal(seen['x-real-ip'], undefined);
    assert.equal(seen['true-client-ip'], undefined);
    assert.equal(seen.forwarded, undefined);
  });
});

describe('underscore twins of the headers the balancer writes or strips', () => {
  test('never reach the backend (CGI-style servers read X_Forwarded_Host as X-Forwarded-Host); other underscored names pass', async () => {
    const backend = await countingBackend();
    const lb = loadBalance({ targets: [backend.url] });
    const front = await listen(lb);
    try {
      const twins = [
        'X_Forwarded_For',
        'X_Forwarded_Host',
        'X_Forwarded_Proto',
        'X_Real_IP',
        'X_Original_URL',
        'X_HTTP_Method_Override',
        'Content_Length',
        'Transfer_Encoding',
        'Forwarded_',
      ];
      let head = 'GET /twins HTTP/1.1\r\nHost: x\r\n';
      for (const name of twins) head += `${name}: spoofed\r\n`;
      head += 'X_Api_Key: mine\r\nConnection: close\r\n\r\n';
      const reply = await raw(front.port, head);
      assert.deepEqual(reply.statuses, [200]);
      const seen = backend.arrivals.find((a) => a.url === '/twins')!.headers;
      for (const name of twins.slice(0, -1)) assert.equal(seen[name.toLowerCase()], undefined, `${name} dropped`);
      assert.equal(seen.forwarded_, 'spoofed', 'a name that is no twin passes');
      assert.equal(seen.x_api_key, 'mine');
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });
});
