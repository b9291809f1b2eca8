import assert from 'node:assert/strict';
import type { IncomingMessage, RequestListener } from 'node:http';
import { after, before, describe, test } from 'node:test';
import connect from 'connect';
import express5 from 'express';
import express4 from 'express4';
import { loadBalance, type LoadBalancer, type PathRewrite } from 'proxy-balancer';
import { ESCAPES } from './abuse/escapes.js';
import { countingBackend, front, raw } from './abuse/harness.js';

const pick = ({ status, url }: { status: number | undefined; url: string | undefined }) => ({ status, url });
const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

/** A balancer with `pathRewrite` in front of a counting backend; `send` returns the status and the path the backend saw. */
async function rewriting(pathRewrite: PathRewrite) {
  const backend = await countingBackend();
  const lb = loadBalance({ targets: [backend.url], pathRewrite });
  const server = await front(lb);
  return {
    backend,
    async send(path: string): Promise<{ status: number | undefined; url: string | undefined; text: string }> {
      const before = backend.arrivals.length;
      const reply = await raw(server.port, get(path));
      return { status: reply.statuses[0], url: backend.arrivals.length > before ? backend.arrivals.at(-1)!.url : undefined, text: reply.text };
    },
    async close() {
      await lb.close();
      await server.close();
      await backend.close();
    },
  };
}

describe("pathRewrite in http-proxy-middleware's forms", () => {
  test("{ '^/api': '' } strips the prefix; paths outside it get 404", async () => {
    const t = await rewriting({ '^/api': '' });
    try {
      assert.deepEqual(pick(await t.send('/api/users?id=1')), { status: 200, url: '/users?id=1' });
      assert.deepEqual(pick(await t.send('/api')), { status: 200, url: '/' });
      assert.deepEqual(pick(await t.send('/api/')), { status: 200, url: '/' });
      assert.deepEqual(pick(await t.send('/apiary')), { status: 404, url: undefined }, 'whole segments only');
      assert.deepEqual(pick(await t.send('/other')), { status: 404, url: undefined });
    } finally {
      await t.close();
    }
  });

  test("{ '^/old': '/new' } and { '^/api': '/v1' } (which used to throw) map prefixes; '^/api/': '/' is the same rule", async () => {
    const t = await rewriting({ '^/old': '/new', '^/api/': '/', '^/': '/site' });
    try {
      assert.deepEqual(pick(await t.send('/old/page?x=1')), { status: 200, url: '/new/page?x=1' });
      assert.deepEqual(pick(await t.send('/api/users')), { status: 200, url: '/users' });
      assert.deepEqual(pick(await t.send('/elsewhere')), { status: 200, url: '/site/elsewhere' });
    } finally {
      await t.close();
    }
    const v1 = await rewriting({ '^/api': '/v1' });
    try {
      assert.deepEqual(pick(await v1.send('/api/users')), { status: 200, url: '/v1/users' });
    } finally {
      await v1.close();
    }
  });

  test('a ^-anchored prefix is confined exactly like a plain one: every traversal form gets 400, nothing forwarded', async () => {
    const t = await rewriting({ '^/api': '/internal/api' });
    try {
      for (const path of ESCAPES) assert.equal((await t.send(path)).status, 400, path);
      assert.equal(t.backend.arrivals.length, 0);
      assert.equal(t.backend.connections, 0);
    } finally {
      await t.close();
    }
  });

  test('a key that is a regular expression is a TypeError naming the prefix it amounts to, or suggesting a function', () => {
    const refusal = (pathRewrite: Record<string, string>): string => {
      try {
        loadBalance({ targets: ['http://127.0.0.1:1'], pathRewrite });
      } catch (err) {
        assert.ok(err instanceof TypeError);
        return err.message;
      }
      assert.fail('no TypeError');
    };
    const pattern = refusal({ '^/api/v[0-9]+': '' });
    assert.match(pattern, /^loadBalance: options\.pathRewrite\["\^\/api\/v\[0-9\]\+"\] must be a plain path prefix/);
    assert.match(pattern, /prefixes only/);
    assert.ok(pattern.includes('pathRewrite: (path) => path.replace(/^\\/api\\/v[0-9]+/, "")'), pattern);
    assert.match(refusal({ '^/api\\.v1': '/x' }), /write "\/api\.v1"/);
    assert.match(refusal({ '^/v1.2': '/x' }), /write "\/v1\.2"/, "'.' is any character to a regular expression");
    assert.match(refusal({ '^/api$': '' }), /write "\/api"/);
    assert.match(refusal({ '^/api/.*': '' }), /write "\/api"/);
    assert.match(refusal({ '^/(a|b)': '' }), /pass a function/);
    assert.match(refusal({ '^/api': 'v1' }), /an absolute path \(or ''\)/);
    assert.match(refusal({ '/api': '/a', '^/api/': '/b' }), /another key names "\/api" too/);
  });
});

describe("pathRewrite under a mount (app.use('/api', lb))", () => {
  const mounts: Record<string, (lb: LoadBalancer) => RequestListener> = {
    'Express 4': (lb) => express4().use('/api', lb) as unknown as RequestListener,
    'Express 5': (lb) => express5().use('/api', lb) as unknown as RequestListener,
    Connect: (lb) => connect().use('/api', lb) as unknown as RequestListener,
  };

  async function mounted(build: (lb: LoadBalancer) => RequestListener, pathRewrite: PathRewrite) {
    const backend = await countingBackend();
    const lb = loadBalance({ targets: [backend.url], pathRewrite });
    const server = await front(build(lb));
    return {
      backend,
      async send(path: string) {
        const before = backend.arrivals.length;
        const reply = await raw(server.port, get(path));
        const arrival = backend.arrivals.length > before ? backend.arrivals.at(-1) : undefined;
        return { status: reply.statuses[0], url: arrival?.url, prefix: arrival?.headers['x-forwarded-prefix'] };
      },
      async close() {
        await lb.close();
        await server.close();
        await backend.close();
      },
    };
  }

  for (const [name, build] of Object.entries(mounts)) {
    test(`${name}: a rule naming the mount path is read against the path the client sent, as http-proxy-middleware's config meant it`, async () => {
      const strip = await mounted(build, { '^/api': '' });
      const mapped = await mounted(build, { '/api': '/internal/v2' });
      const deeper = await mounted(build, { '/api/v1': '/v1', '/': '/site' });
      try {
        assert.deepEqual(await strip.send('/api/users?id=1'), { status: 200, url: '/users?id=1', prefix: '/api' });
        assert.deepEqual(await strip.send('/api/api/users'), { status: 200, url: '/api/users', prefix: '/api' }, 'matched once, on the whole path');
        assert.deepEqual(await mapped.send('/api/users?id=1'), { status: 200, url: '/internal/v2/users?id=1', prefix: '/api' });
        assert.deepEqual(await mapped.send('/API/users'), { status: 200, url: '/internal/v2/users', prefix: '/api' }, 'the mount is case-blind');
        assert.deepEqual(await deeper.send('/api/v1/users'), { status: 200, url: '/v1/users', prefix: '/api' });
        assert.deepEqual(
          await deeper.send('/api/other'),
          { status: 200, url: '/site/api/other', prefix: undefined },
          "'/' above the mount sees the whole path",
        );
      } finally {
        await strip.close();
        await mapped.close();
        await deeper.close();
      }
    });

    test(`${name}: confined as unmounted: every traversal form gets 400, nothing forwarded`, async () => {
      const t = await mounted(build, { '/api': '/internal/api' });
      try {
        for (const path of ESCAPES) assert.equal((await t.send(path)).status, 400, path);
        assert.equal(t.backend.arrivals.length, 0);
        assert.equal(t.backend.connections, 0);
      } finally {
        await t.close();
      }
    });
  }

  test('rules that name no part of the mount path stay relative to it, as before', async () => {
    const t = await mounted(mounts['Express 5']!, { '^/users': '/u', '/': '/v1' });
    try {
      assert.deepEqual(await t.send('/api/users/7'), { status: 200, url: '/u/7', prefix: '/api/users' });
      assert.deepEqual(await t.send('/api/orders/7'), { status: 200, url: '/v1/orders/7', prefix: '/api' });
    } finally {
      await t.close();
    }
  });
});

describe('pathRewrite as a function', () => {
  let t: Awaited<ReturnType<typeof rewriting>>;
  const seen: Array<{ path: string; host: string | undefined }> = [];

  before(async () => {
    t = await rewriting((path: string, req: IncomingMessage) => {
      seen.push({ path, host: req.headers.host });
      if (path.startsWith('/throw')) throw new Error('boom');
      if (path.startsWith('/number')) return 42 as unknown as string;
      if (path.startsWith('/keep')) return undefined;
      if (path.startsWith('/abs')) return '//evil.example/x';
      if (path.startsWith('/rel')) return 'relative/x';
      if (path.startsWith('/space')) return '/a b';
      if (path.startsWith('/crlf')) return '/a\r\nX-Injected: 1';
      if (path.startsWith('/hash')) return '/a#b';
      if (path.startsWith('/dots')) return '/x/../../etc/passwd';
      return path.replace(/^\/api/, '/internal/api');
    });
  });
  after(() => t.close());

  test('gets the path with its query and the request; its result is sent upstream', async () => {
    assert.deepEqual(pick(await t.send('/api/users?id=1&q=../x')), { status: 200, url: '/internal/api/users?id=1&q=../x' });
    assert.deepEqual(seen.at(-1), { path: '/api/users?id=1&q=../x', host: 'x' });
    assert.deepEqual(pick(await t.send('/keep/this')), { status: 200, url: '/keep/this' }, 'undefined keeps the path');
    assert.deepEqual(pick(await t.send('/api/v1.2/file..txt')), { status: 200, url: '/internal/api/v1.2/file..txt' });
  });

  test('every traversal form of the suite, in what the function returns, gets 400 and nothing is forwarded', async () => {
    const before = t.backend.arrivals.length;
    for (const path of ESCAPES) assert.equal((await t.send(path)).status, 400, path);
    assert.equal(t.backend.arrivals.length, before);
  });

  test('results that are not a plain absolute path get 400: //authority, relative, spaces, CR/LF, fragments, dot segments', async () => {
    const before = t.backend.arrivals.length;
    for (const path of ['/abs', '/rel', '/space', '/crlf', '/hash', '/dots']) assert.equal((await t.send(path)).status, 400, path);
    assert.equal(t.backend.arrivals.length, before);
  });

  test('a function that throws or returns a non-string gets the client a 500, nothing forwarded', async () => {
    const before = t.backend.arrivals.length;
    const thrown = await t.send('/throw');
    assert.equal(thrown.status, 500);
    assert.ok(!thrown.text.includes('boom'), 'the error does not reach the client');
    assert.equal((await t.send('/number')).status, 500);
    assert.equal(t.backend.arrivals.length, before);
  });
});
