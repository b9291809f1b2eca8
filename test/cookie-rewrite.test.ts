import assert from 'node:assert/strict';
import type { RequestListener } from 'node:http';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { loadBalance, type LoadBalanceOptions, responseCache } from 'proxy-balancer';
import { closeAll, listen, request, type TestServer } from './helpers.js';

const COOKIES = [
  'a=1; Domain=backend.internal; Path=/',
  'b=2; domain=.Backend.Internal; path=/app; HttpOnly',
  'c=3; Path=/',
  'd=4',
  'e=5; Secure; Domain=other.example; SameSite=Lax',
  // "domain=" inside the cookie value is not an attribute.
  'f=domain=backend.internal; Path=/app',
];

describe('Set-Cookie Domain and Path rewriting (cookieDomainRewrite, cookiePathRewrite)', () => {
  let backend: TestServer;
  before(async () => {
    backend = await listen((req, res) => {
      if (req.url?.startsWith('/cached')) res.setHeader('cache-control', 'max-age=60');
      res.setHeader('set-cookie', COOKIES);
      res.end('ok');
    });
  });
  after(() => closeAll(backend));

  async function cookiesThrough(options: Omit<LoadBalanceOptions, 'targets'>, paths = ['/']): Promise<Array<string[] | undefined>> {
    const lb = loadBalance({ targets: [backend.url], ...options });
    const front = await listen(express().use('/api', lb) as unknown as RequestListener);
    try {
      const out: Array<string[] | undefined> = [];
      for (const path of paths) {
        const reply = await request(`${front.url}/api${path}`);
        assert.equal(reply.status, 200);
        out.push(reply.headers['set-cookie']);
      }
      return out;
    } finally {
      await lb.close();
      await front.close();
    }
  }

  test('off by default: cookies are relayed byte for byte', async () => {
    assert.deepEqual(await cookiesThrough({}), [COOKIES]);
  });

  test('a string replaces every Domain, adds none', async () => {
    const [cookies] = await cookiesThrough({ cookieDomainRewrite: 'shop.example' });
    assert.deepEqual(cookies, [
      'a=1; Domain=shop.example; Path=/',
      'b=2; domain=shop.example; path=/app; HttpOnly',
      'c=3; Path=/',
      'd=4',
      'e=5; Secure; Domain=shop.example; SameSite=Lax',
      'f=domain=backend.internal; Path=/app',
    ]);
  });

  test('an object maps domains case-insensitively without the leading dot, "*" for the rest, "" removes', async () => {
    const [mapped] = await cookiesThrough({ cookieDomainRewrite: { 'Backend.Internal': 'shop.example' } });
    assert.deepEqual(mapped?.slice(0, 2), ['a=1; Domain=shop.example; Path=/', 'b=2; domain=shop.example; path=/app; HttpOnly']);
    assert.equal(mapped?.[4], 'e=5; Secure; Domain=other.example; SameSite=Lax', 'a domain no rule names is kept');
    const [wildcard] = await cookiesThrough({ cookieDomainRewrite: { 'backend.internal': 'shop.example', '*': '' } });
    assert.equal(wildcard?.[0], 'a=1; Domain=shop.example; Path=/');
    assert.equal(wildcard?.[4], 'e=5; Secure; SameSite=Lax');
    const [removed] = await cookiesThrough({ cookieDomainRewrite: '' });
    assert.deepEqual(removed?.slice(0, 2), ['a=1; Path=/', 'b=2; path=/app; HttpOnly']);
  });

  test('cookiePathRewrite maps whole paths, and combines with cookieDomainRewrite', async () => {
    const [cookies] = await cookiesThrough({ cookiePathRewrite: { '/': '/api/', '/app': '/api/app' }, cookieDomainRewrite: { '*': '' } });
    assert.deepEqual(cookies, [
      'a=1; Path=/api/',
      'b=2; path=/api/app; HttpOnly',
      'c=3; Path=/api/',
      'd=4',
      'e=5; Secure; SameSite=Lax',
      'f=domain=backend.internal; Path=/api/app',
    ]);
    const [stringForm] = await cookiesThrough({ cookiePathRewrite: '/api' });
    assert.deepEqual(
      stringForm?.map((c) => c.match(/path=[^;]*/i)?.[0]),
      ['Path=/api', 'path=/api', 'Path=/api', undefined, undefined, 'Path=/api'],
    );
  });

  test('the same results as http-proxy-middleware for the same options', async () => {
    const cases: Array<Pick<LoadBalanceOptions, 'cookieDomainRewrite' | 'cookiePathRewrite'>> = [
      { cookieDomainRewrite: 'shop.example' },
      { cookieDomainRewrite: { 'backend.internal': 'shop.example', '*': '' } },
      { cookieDomainRewrite: '', cookiePathRewrite: { '/app': '/api/app' } },
      { cookiePathRewrite: { '*': '/' } },
    ];
    for (const options of cases) {
      const hpm = await listen(express().use('/api', createProxyMiddleware({ target: backend.url, ...options })) as unknown as RequestListener);
      try {
        const theirs = (await request(`${hpm.url}/api/`)).headers['set-cookie'];
        // http-proxy matches Domain values exactly: compare on the cookies whose domain it recognises.
        const ours = (await cookiesThrough(options))[0];
        for (const i of [0, 2, 3, 4, 5]) assert.equal(ours?.[i], theirs?.[i], `${JSON.stringify(options)} cookie ${i}`);
      } finally {
        await hpm.close();
      }
    }
  });

  test('an on.proxyRes hook (the header object is relayed) gets the same rewriting', async () => {
    let hooked = 0;
    const [cookies] = await cookiesThrough({ cookieDomainRewrite: 'shop.example', on: { proxyRes: () => void hooked++ } });
    assert.equal(hooked, 1);
    assert.equal(cookies?.[0], 'a=1; Domain=shop.example; Path=/');
  });

  test('the response cache stores (storeSetCookie) and replays the rewritten form; without it, each answer is rewritten', async () => {
    const options = { cookieDomainRewrite: 'shop.example', cookiePathRewrite: { '/': '/api/' } } as const;
    const before = backend.hits;
    const stored = await cookiesThrough({ ...options, cache: responseCache({ storeSetCookie: true }) }, ['/cached', '/cached']);
    assert.equal(backend.hits - before, 1, 'the second request was a hit');
    assert.deepEqual(stored[1], stored[0]);
    assert.equal(stored[1]?.[0], 'a=1; Domain=shop.example; Path=/api/');
    const middle = backend.hits;
    const notStored = await cookiesThrough({ ...options, cache: responseCache() }, ['/cached', '/cached']);
    assert.equal(backend.hits - middle, 2, 'responses with Set-Cookie are not stored by default');
    assert.equal(notStored[1]?.[0], 'a=1; Domain=shop.example; Path=/api/');
  });

  test('invalid values throw a TypeError naming the option', () => {
    const cases: Array<[Partial<LoadBalanceOptions>, RegExp]> = [
      [{ cookieDomainRewrite: true as never }, /options\.cookieDomainRewrite must be false, a string, or an object/],
      [{ cookiePathRewrite: 5 as never }, /options\.cookiePathRewrite must be/],
      [{ cookiePathRewrite: ['/'] as never }, /options\.cookiePathRewrite must be/],
      [{ cookieDomainRewrite: { a: 5 } as never }, /options\.cookieDomainRewrite\["a"\] must be a string, got 5/],
      [{ cookieDomainRewrite: 'a;b' }, /options\.cookieDomainRewrite must be a cookie attribute value/],
      [{ cookiePathRewrite: { '/': '/x\n' } }, /options\.cookiePathRewrite\["\/"\] must be a cookie attribute value/],
      [{ cookiePathRewrite: ' /x' }, /options\.cookiePathRewrite must be a cookie attribute value without surrounding whitespace/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => loadBalance({ targets: ['http://127.0.0.1:1'], ...options }),
        (err: Error) => err instanceof TypeError && message.test(err.message),
      );
    }
  });
});
