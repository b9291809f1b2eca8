import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { ESCAPES } from './escapes.js';
import { countingBackend, front, raw, type CountingBackend, type Front } from './harness.js';

describe('pathRewrite cannot escape its prefix', () => {
  let backend: CountingBackend;
  let lb: LoadBalancer;
  let server: Front;

  before(async () => {
    backend = await countingBackend();
    lb = loadBalance({ targets: [backend.url], pathRewrite: { '/api': '/internal/api' } });
    server = await front(lb);
  });

  after(async () => {
    await lb.close();
    await server.close();
    await backend.close();
  });

  for (const path of ESCAPES) {
    test(`${JSON.stringify(path)} → 400, nothing forwarded`, async () => {
      const reply = await raw(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.deepEqual(reply.statuses, [400], reply.text);
      assert.equal(backend.arrivals.length, 0);
      assert.equal(backend.connections, 0);
    });
  }

  for (const path of ['/admin', '/apiary', '/api%2f..%2fadmin', '/internal/api/x']) {
    test(`${JSON.stringify(path)} (outside every prefix) → 404, nothing forwarded`, async () => {
      const reply = await raw(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.deepEqual(reply.statuses, [404], reply.text);
      assert.equal(backend.arrivals.length, 0);
    });
  }

  test('"*" names no path at all → 400 before any prefix is looked at, nothing forwarded', async () => {
    const reply = await raw(server.port, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(reply.statuses, [400], reply.text);
    assert.equal(backend.arrivals.length, 0);
  });

  test('an absolute-form target is normalized first: http://x/api/../admin is /admin → 404', async () => {
    const reply = await raw(server.port, 'GET http://x/api/../admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(reply.statuses, [404]);
    assert.equal(backend.arrivals.length, 0);
  });

  test('legitimate paths are rewritten and reach the backend unchanged otherwise', async () => {
    for (const [path, expected] of [
      ['/api/users?id=1', '/internal/api/users?id=1'],
      ['/api', '/internal/api'],
      ['/api/', '/internal/api/'],
      ['/api/v1.2/file..txt', '/internal/api/v1.2/file..txt'],
      ['/api/100%25/x', '/internal/api/100%25/x'],
      ['/api/a%20b?path=../../etc', '/internal/api/a%20b?path=../../etc'],
    ] as const) {
      const reply = await raw(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.deepEqual(reply.statuses, [200], path);
      assert.equal(backend.arrivals.at(-1)!.url, expected);
    }
    assert.equal(backend.arrivals.length, 6);
  });
});
