import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import { loadBalance, type LoadBalancer } from 'proxy-balancer';
import { backend, closeAll, listen, request, selfSignedCert, type TestServer } from './helpers.js';

describe('mounted in frameworks', () => {
  let backends: TestServer[];
  before(async () => {
    backends = await Promise.all(['a', 'b'].map(backend));
  });
  after(() => closeAll(...backends));

  const frameworks = {
    'Express 5': (lb: LoadBalancer) =>
      express5()
        .get('/health', (_req, res) => void res.send('front ok'))
        .use('/api', lb),
    'Express 4': (lb: LoadBalancer) =>
      express4()
        .get('/health', (_req, res) => void res.send('front ok'))
        .use('/api', lb),
    Connect: (lb: LoadBalancer) =>
      connect()
        .use('/health', (_req: unknown, res: { end(body: string): void }) => res.end('front ok'))
        .use('/api', lb),
  };

  for (const [name, build] of Object.entries(frameworks)) {
    test(`${name}: the mount path is stripped, other routes stay the app's, requests alternate`, async () => {
      const lb = loadBalance({ targets: backends.map((b) => b.url) });
      const front = await listen(build(lb) as never);
      try {
        const first = JSON.parse((await request(`${front.url}/api/echo/users?id=7`)).body);
        const second = JSON.parse((await request(`${front.url}/api/echo/users?id=7`)).body);
        assert.equal(first.url, '/echo/users?id=7');
        assert.notEqual(first.name, second.name, 'consecutive requests go to different backends');
        assert.equal((await request(`${front.url}/health`)).body, 'front ok');
        const post = JSON.parse(
          (await request(`${front.url}/api/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } })).body,
        );
        assert.equal(post.body, '{"a":1}');
      } finally {
        await lb.close();
        await front.close();
      }
    });
  }

  test('redirects to the target come back under the mount path', async () => {
    let self = '';
    const redirecting = await listen((_req, res) => {
      res.writeHead(301, { location: `${self}/moved` });
      res.end();
    });
    self = redirecting.url;
    const lb = loadBalance({ targets: [redirecting.url] });
    const express = await listen(express5().use('/api', lb) as never);
    const conn = await listen(connect().use('/api', lb) as never);
    try {
      const viaExpress = await request(`${express.url}/api/old`, { headers: { host: 'shop.example' } });
      assert.equal(viaExpress.headers.location, 'http://shop.example/api/moved');
      const viaConnect = await request(`${conn.url}/api/old`, { headers: { host: 'shop.example' } });
      assert.equal(viaConnect.headers.location, 'http://shop.example/api/moved');
    } finally {
      await lb.close();
      await closeAll(express, conn, redirecting);
    }
  });
});

describe('TLS', () => {
  const { key, cert } = selfSignedCert();

  test('terminates TLS in the user https server: backends get X-Forwarded-Proto https', async () => {
    const b = await backend('b');
    const lb = loadBalance({ targets: [b.url] });
    const front = await listen(lb, https.createServer({ key, cert }));
    try {
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${front.port}/echo`, { ca: cert, agent: false }, (res) => {
            let data = '';
            res.on('data', (c) => (data += c));
            res.on('end', () => resolve(data));
          })
          .on('error', reject);
      });
      const { headers } = JSON.parse(body);
      assert.equal(headers['x-forwarded-proto'], 'https');
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });

  test('proxies to HTTPS upstreams, verifying them against agentOptions.ca', async () => {
    const secure = await listen((_req, res) => res.end('secure upstream'), https.createServer({ key, cert }));
    const target = `https://127.0.0.1:${secure.port}`;
    const trusting = loadBalance({ targets: [target], agentOptions: { ca: cert } });
    const untrusting = loadBalance({ targets: [target] });
    const front1 = await listen(trusting);
    const front2 = await listen(untrusting);
    try {
      assert.equal((await request(`${front1.url}/`)).body, 'secure upstream');
      assert.equal((await request(`${front2.url}/`)).status, 502, 'an unverifiable certificate is refused');
    } finally {
      await trusting.close();
      await untrusting.close();
      await closeAll(front1, front2, secure);
    }
  });
});
