import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import {
  consistentHash,
  dnsTargets,
  httpHealthCheck,
  ipHash,
  leastConnections,
  leastRequest,
  loadBalance,
  memoryRateLimitStore,
  memoryStore,
  peakEwma,
  powerOfTwoChoices,
  random,
  redisRateLimitStore,
  redisStore,
  responseCache,
  roundRobin,
  serverTimeouts,
  StoreGuard,
  tcpHealthCheck,
  tieredStore,
  weightedRoundRobin,
  type LoadBalanceOptions,
} from 'proxy-balancer';
import { backend, closeAll, listen, request } from './helpers.js';

// One table per kind of mistake, each row a call that must throw a TypeError matching its pattern.
// Options are passed `as never`: these are the mistakes the types would catch in TypeScript but
// not in JavaScript, or with an `as any` in between.

const targets = ['http://127.0.0.1:1'];
/** A fake ioredis client, enough for the Redis stores to accept it (they issue no command at construction). */
const redis = { getBuffer() {}, scan() {}, set() {}, del() {}, eval() {}, evalsha() {}, on() {}, status: 'ready' };

/** Builds a balancer (closed at once if it is built) from options that are expected to throw. */
function lb(options: Record<string, unknown>): void {
  loadBalance({ targets, ...options } as LoadBalanceOptions).close();
}

function throwsAll(cases: ReadonlyArray<readonly [string, () => unknown, RegExp]>): void {
  for (const [name, run, message] of cases) {
    test(name, () => {
      assert.throws(run, (err: Error) => {
        assert.equal(err.name, 'TypeError', `${name}: ${err.stack}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }
}

describe('an uncalled factory where its product is expected is named, with the call to write', () => {
  const strategies = [roundRobin, weightedRoundRobin, leastConnections, powerOfTwoChoices, random, leastRequest, peakEwma, ipHash, consistentHash] as const;
  throwsAll([
    ...strategies.map(
      (factory) =>
        [
          `strategy: ${factory.name}`,
          () => lb({ strategy: factory }),
          new RegExp(`^loadBalance: options\\.strategy is the factory ${factory.name} itself: call it, strategy: ${factory.name}\\(`),
        ] as const,
    ),
    [
      'cache: responseCache',
      () => lb({ cache: responseCache }),
      /^loadBalance: options\.cache is the factory responseCache itself: call it, cache: responseCache\(\)$/,
    ],
    [
      'healthCheck: httpHealthCheck',
      () => lb({ healthCheck: httpHealthCheck }),
      /^loadBalance: options\.healthCheck is the factory httpHealthCheck itself: call it, healthCheck: httpHealthCheck\(\)$/,
    ],
    [
      'healthCheck: tcpHealthCheck',
      () => lb({ healthCheck: tcpHealthCheck }),
      /^loadBalance: options\.healthCheck is the factory tcpHealthCheck itself: call it, healthCheck: tcpHealthCheck\(\)$/,
    ],
    [
      'targets: dnsTargets',
      () => loadBalance({ targets: dnsTargets as never }),
      /^loadBalance: options\.targets is the factory dnsTargets itself: call it, targets: dnsTargets\('http:\/\/…'\)$/,
    ],
    [
      'targets: [url, dnsTargets]',
      () => loadBalance({ targets: ['http://127.0.0.1:1', dnsTargets as never] }),
      /^loadBalance: options\.targets holds the factory dnsTargets itself: call it, targets: \[dnsTargets\('http:\/\/…'\)\]$/,
    ],
    [
      'a target’s healthCheck: httpHealthCheck',
      () => loadBalance({ targets: [{ url: 'http://127.0.0.1:1', healthCheck: httpHealthCheck as never }] }),
      /^targets\[0\]: healthCheck is the factory httpHealthCheck itself: call it, healthCheck: httpHealthCheck\(\)$/,
    ],
    [
      'rateLimit.store: memoryRateLimitStore',
      () => lb({ rateLimit: { limit: 5, store: memoryRateLimitStore } }),
      /^loadBalance: options\.rateLimit\.store is the factory memoryRateLimitStore itself: call it, store: memoryRateLimitStore\(\)$/,
    ],
    [
      'rateLimit.store: redisRateLimitStore',
      () => lb({ rateLimit: { limit: 5, store: redisRateLimitStore } }),
      /^loadBalance: options\.rateLimit\.store is the factory redisRateLimitStore itself: call it, store: redisRateLimitStore\(client\)$/,
    ],
    [
      'responseCache store: memoryStore',
      () => responseCache({ store: memoryStore as never }),
      /^responseCache: options\.store is the factory memoryStore itself: call it, store: memoryStore\(\)$/,
    ],
    [
      'responseCache store: redisStore',
      () => responseCache({ store: redisStore as never }),
      /^responseCache: options\.store is the factory redisStore itself: call it, store: redisStore\(client\)$/,
    ],
    [
      'responseCache store: tieredStore',
      () => responseCache({ store: tieredStore as never }),
      /^responseCache: options\.store is the factory tieredStore itself: call it, store: tieredStore\(\{ l2 \}\)$/,
    ],
    [
      'tieredStore l2: redisStore',
      () => tieredStore({ l2: redisStore as never }),
      /^tieredStore: options\.l2 is the factory redisStore itself: call it, l2: redisStore\(client\)$/,
    ],
  ]);

  test('a plain pick function is still a strategy, and a called factory still works', () => {
    const balancer = loadBalance({ targets, strategy: (ready) => ready[0] });
    assert.equal(balancer.stats().strategy, 'custom');
    balancer.close();
    const called = loadBalance({ targets, strategy: leastConnections() });
    assert.equal(called.stats().strategy, 'least-connections');
    called.close();
  });
});

describe('an unknown key, at any depth, names the option meant', () => {
  throwsAll([
    ['loadBalance', () => lb({ stratgy: roundRobin() }), /^loadBalance: unknown option "stratgy" — did you mean "strategy"\?$/],
    ['loadBalance, case', () => lb({ proxytimeout: 5 }), /^loadBalance: unknown option "proxytimeout" — did you mean "proxyTimeout"\?$/],
    [
      'loadBalance, nothing near',
      () => lb({ colour: 'blue' }),
      /^loadBalance: unknown option "colour" \(expected one of targets, .*strategy, .*webSocketIdleTimeout.*\)$/,
    ],
    ['retry', () => lb({ retry: { retires: 3 } }), /^loadBalance: unknown option "retry\.retires" — did you mean "retry\.retries"\?$/],
    [
      'retry.backoff',
      () => lb({ retry: { backoff: { bse: 5 } } }),
      /^loadBalance: unknown option "retry\.backoff\.bse" — did you mean "retry\.backoff\.base"\?$/,
    ],
    [
      'outlierDetection',
      () => lb({ outlierDetection: { consecutiveFailure: 3 } }),
      /^loadBalance: unknown option "outlierDetection\.consecutiveFailure" — did you mean "outlierDetection\.consecutiveFailures"\?$/,
    ],
    [
      'outlierDetection.latency',
      () => lb({ outlierDetection: { latency: { facter: 2 } } }),
      /^loadBalance: unknown option "outlierDetection\.latency\.facter" — did you mean "outlierDetection\.latency\.factor"\?$/,
    ],
    [
      'affinity',
      () => lb({ affinity: { secret: 'a'.repeat(16), cokie: 'x' } }),
      /^loadBalance: unknown option "affinity\.cokie" — did you mean "affinity\.cookie"\?$/,
    ],
    ['rateLimit', () => lb({ rateLimit: { limt: 5 } }), /^loadBalance: unknown option "rateLimit\.limt" — did you mean "rateLimit\.limit"\?$/],
    [
      'circuitBreaker',
      () => lb({ circuitBreaker: { maxPendng: 5 } }),
      /^loadBalance: unknown option "circuitBreaker\.maxPendng" — did you mean "circuitBreaker\.maxPending"\?$/,
    ],
    ['ipFilter', () => lb({ ipFilter: { alow: [] } }), /^loadBalance: unknown option "ipFilter\.alow" — did you mean "ipFilter\.allow"\?$/],
    ['on', () => lb({ on: { proxyreq: () => {} } }), /^loadBalance: unknown option "on\.proxyreq" — did you mean "on\.proxyReq"\?$/],
    [
      'transformResponse',
      () => lb({ transformResponse: { transform: (body: string) => body, maxbytes: 5 } }),
      /^loadBalance: unknown option "transformResponse\.maxbytes" — did you mean "transformResponse\.maxBytes"\?$/,
    ],
    [
      'a target',
      () => loadBalance({ targets: [{ url: 'http://127.0.0.1:1', wieght: 2 } as never] }),
      /^targets\[0\]: unknown option "wieght" — did you mean "weight"\?$/,
    ],
    ['responseCache', () => responseCache({ maxsize: 5 } as never), /^responseCache: unknown option "maxsize" — did you mean "maxSize"\?$/],
    [
      'responseCache compress',
      () => responseCache({ compress: { minsize: 5 } as never }),
      /^responseCache: unknown option "compress\.minsize" — did you mean "compress\.minSize"\?$/,
    ],
    ['memoryStore', () => memoryStore({ maxsize: 5 } as never), /^memoryStore: unknown option "maxsize" — did you mean "maxSize"\?$/],
    ['redisStore', () => redisStore(redis as never, { prefx: 'x' } as never), /^redisStore: unknown option "prefx" — did you mean "prefix"\?$/],
    ['tieredStore', () => tieredStore({ l2: memoryStore(), l1MaxTTL: 5 } as never), /^tieredStore: unknown option "l1MaxTTL" — did you mean "l1MaxTtl"\?$/],
    ['consistentHash', () => consistentHash({ key: 'ip', ky: 'x' } as never), /^consistentHash: unknown option "ky" — did you mean "key"\?$/],
    [
      'consistentHash key',
      () => consistentHash({ key: { heder: 'x' } as never }),
      /^consistentHash: unknown option "key\.heder" — did you mean "key\.header"\?$/,
    ],
    ['ipHash', () => ipHash({ replica: 5 } as never), /^ipHash: unknown option "replica" — did you mean "replicas"\?$/],
    ['leastRequest', () => leastRequest({ choiceCont: 3 } as never), /^leastRequest: unknown option "choiceCont" — did you mean "choiceCount"\?$/],
    ['peakEwma', () => peakEwma({ decai: 5 } as never), /^peakEwma: unknown option "decai" — did you mean "decay"\?$/],
    ['httpHealthCheck', () => httpHealthCheck({ pth: '/' } as never), /^httpHealthCheck: unknown option "pth" — did you mean "path"\?$/],
    ['tcpHealthCheck', () => tcpHealthCheck({ timout: 5 } as never), /^tcpHealthCheck: unknown option "timout" — did you mean "timeout"\?$/],
    ['dnsTargets', () => dnsTargets('http://api.internal', { intervall: 5 } as never), /^dnsTargets: unknown option "intervall" — did you mean "interval"\?$/],
    ['memoryRateLimitStore', () => memoryRateLimitStore({ maxkey: 5 } as never), /^memoryRateLimitStore: unknown option "maxkey" — did you mean "maxKeys"\?$/],
    [
      'redisRateLimitStore',
      () => redisRateLimitStore(redis as never, { prefx: 'x' } as never),
      /^redisRateLimitStore: unknown option "prefx" — did you mean "prefix"\?$/,
    ],
    [
      'serverTimeouts',
      () => serverTimeouts(http.createServer(), { headerTimeout: 5 } as never),
      /^serverTimeouts: unknown option "headerTimeout" — did you mean "headersTimeout"\?$/,
    ],
    ['StoreGuard', () => new StoreGuard('my store', { timout: 5 } as never), /^my store: unknown option "timout" — did you mean "timeout"\?$/],
  ]);

  test('lb.metrics(), lb.statusPage() and lb.pool.add()', () => {
    const balancer = loadBalance({ targets });
    try {
      assert.throws(() => balancer.metrics({ bucket: [1] } as never), /^TypeError: lb\.metrics: unknown option "bucket" — did you mean "buckets"\?$/);
      assert.throws(() => balancer.statusPage({ titel: 'x' } as never), /^TypeError: lb\.statusPage: unknown option "titel" — did you mean "title"\?$/);
      assert.throws(
        () => balancer.pool.add({ url: 'http://127.0.0.2:1', bakup: true } as never),
        /^TypeError: pool\.add\(target\): unknown option "bakup" — did you mean "backup"\?$/,
      );
    } finally {
      balancer.close();
    }
  });
});

describe('an options object of the wrong type is refused, naming what it got', () => {
  const server = http.createServer();
  throwsAll([
    ['loadBalance([])', () => loadBalance([] as never), /^loadBalance: options must be an object, got an array$/],
    ['retry: true', () => lb({ retry: true }), /^loadBalance: options\.retry must be an object or false, got true$/],
    ['retry: []', () => lb({ retry: [] }), /^loadBalance: options\.retry must be an object or false, got an array$/],
    ['on: []', () => lb({ on: [] }), /^loadBalance: options\.on must be an object of hooks \{ proxyReq\?, proxyRes\?, error\? \}, got an array$/],
    ['on.proxyReq: string', () => lb({ on: { proxyReq: 'x' } }), /^loadBalance: options\.on\.proxyReq must be a function, got "x"$/],
    ['outlierDetection: []', () => lb({ outlierDetection: [] }), /^loadBalance: options\.outlierDetection must be an object or false, got an array$/],
    ['rateLimit: []', () => lb({ rateLimit: [] }), /^loadBalance: options\.rateLimit must be an object with at least a limit, got an array$/],
    ['agentOptions: []', () => lb({ agentOptions: [] }), /^loadBalance: options\.agentOptions must be an object, got an array$/],
    ['responseCache([])', () => responseCache([] as never), /^responseCache: options must be an object, got an array$/],
    [
      'responseCache storeSetCookie',
      () => responseCache({ storeSetCookie: 'yes' as never }),
      /^responseCache: options\.storeSetCookie must be a boolean, got "yes"$/,
    ],
    ['responseCache compress: 5', () => responseCache({ compress: 5 as never }), /^responseCache: options\.compress must be true, false or an object, got 5$/],
    [
      'responseCache compress: []',
      () => responseCache({ compress: [] as never }),
      /^responseCache: options\.compress must be true, false or an object, got an array$/,
    ],
    ['memoryStore(null)', () => memoryStore(null as never), /^memoryStore: options must be an object, got null$/],
    ['memoryStore("64mb")', () => memoryStore('64mb' as never), /^memoryStore: options must be an object, got "64mb"$/],
    ['tieredStore([])', () => tieredStore([] as never), /^tieredStore: options must be an object, got an array$/],
    ['consistentHash([])', () => consistentHash([] as never), /^consistentHash: options must be an object, got an array$/],
    ['ipHash("ip")', () => ipHash('ip' as never), /^ipHash: options must be an object, got "ip"$/],
    ['ipHash(null)', () => ipHash(null as never), /^ipHash: options must be an object, got null$/],
    ['memoryRateLimitStore(null)', () => memoryRateLimitStore(null as never), /^memoryRateLimitStore: options must be an object, got null$/],
    ['StoreGuard options "fast"', () => new StoreGuard('my store', 'fast' as never), /^my store: options must be an object, got "fast"$/],
    ['dnsTargets options []', () => dnsTargets('http://api.internal', [] as never), /^dnsTargets: options must be an object, got an array$/],
    ['httpHealthCheck([])', () => httpHealthCheck([] as never), /^httpHealthCheck: options must be an object, got an array$/],
    ['serverTimeouts options []', () => serverTimeouts(server, [] as never), /^serverTimeouts: options must be an object, got an array$/],
  ]);

  test('lb.metrics([]), lb.metrics({ labels: [] })', () => {
    const balancer = loadBalance({ targets });
    try {
      assert.throws(() => balancer.metrics([] as never), /^TypeError: lb\.metrics: options must be an object, got an array$/);
      assert.throws(
        () => balancer.metrics({ labels: [] } as never),
        /^TypeError: lb\.metrics: options\.labels must be an object of label names to string values, got an array$/,
      );
    } finally {
      balancer.close();
    }
  });
});

describe("http-proxy-middleware's option names say what they are here", () => {
  const cases: ReadonlyArray<readonly [string, unknown, RegExp]> = [
    ['target', 'http://127.0.0.1:1', /targets: \['http:\/\/…'\]/],
    ['router', {}, /strategy: \(targets, req\) => one of targets, or consistentHash/],
    ['ws', true, /server\.on\('upgrade', lb\.upgrade\)/],
    ['pathFilter', '/api', /app\.use\('\/api', lb\)/],
    ['context', '/api', /app\.use\('\/api', lb\)/],
    ['onProxyReq', () => {}, /on: \{ proxyReq: /],
    ['onProxyRes', () => {}, /on: \{ proxyRes: /],
    ['onError', () => {}, /on: \{ error: /],
    ['onProxyReqWs', () => {}, /WebSocket upgrades take no hook/],
    ['logger', console, /DEBUG=proxy-balancer:\*/],
    ['logLevel', 'debug', /DEBUG=proxy-balancer:\*/],
    ['secure', false, /agentOptions: \{ rejectUnauthorized: false \}/],
    ['followRedirects', true, /not supported: redirects reach the client/],
    ['headers', { host: 'x' }, /on: \{ proxyReq: \(proxyReq\) => proxyReq\.setHeader\(name, value\) \}/],
    ['auth', 'user:password', /setHeader\('authorization', 'Basic ' \+ btoa\('user:password'\)\)/],
    ['xfwd', true, /here: xForwarded \(default true\)/],
    ['selfHandleResponse', true, /transformResponse .* on: \{ proxyRes \}/],
    ['autoRewrite', true, /Location .* rewritten to the client's address by default \(rewriteLocation/],
    ['hostRewrite', 'x', /rewriteLocation/],
    ['protocolRewrite', 'https', /rewriteLocation/],
    ['buffer', {}, /forwarded re-serialised/],
    ['ignorePath', true, /pathRewrite: \(\) => '\/'/],
    ['prependPath', false, /target URL's path is always prepended/],
    ['toProxy', true, /no equivalent/],
    ['forward', 'http://x', /no equivalent/],
    ['plugins', [], /no equivalent here: hooks .* and events/],
    ['ejectPlugins', true, /no default plugins here to eject/],
  ];
  for (const [name, value, equivalent] of cases) {
    test(name, () => {
      assert.throws(
        () => lb({ [name]: value }),
        (err: Error) => {
          assert.equal(err.name, 'TypeError');
          assert.ok(err.message.startsWith(`loadBalance: unknown option "${name}": http-proxy`), err.message);
          assert.match(err.message, equivalent);
          return true;
        },
      );
    });
  }

  test("a path given as filter (http-proxy-middleware's) is told to mount the balancer", () => {
    assert.throws(
      () => lb({ filter: '/api' }),
      /^TypeError: loadBalance: options\.filter must be a function \(req\) => verdict \(to proxy some paths only, mount the balancer: app\.use\('\/api', lb\)\), got "\/api"$/,
    );
  });

  test('the names it shares are options here', () => {
    lb({ changeOrigin: true, proxyTimeout: 1000, timeout: 1000, cookieDomainRewrite: 'x.example', agent: new http.Agent(), on: {} });
  });
});

describe('allowedMethods are upper-cased', () => {
  test("allowedMethods: ['get', 'head'] lets GET through and answers POST 405 with Allow: GET, HEAD", async () => {
    const up = await backend('a');
    const balancer = loadBalance({ targets: [up.url], allowedMethods: ['get', 'head', 'GET'] });
    const front = await listen(balancer);
    try {
      const get = await request(front.url);
      assert.equal(get.status, 200);
      assert.equal(get.body, 'a');
      const post = await request(front.url, { method: 'POST', body: 'x' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
    } finally {
      await balancer.close();
      await closeAll(front, up);
    }
  });
});
