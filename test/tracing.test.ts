import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, afterEach, before, describe, test } from 'node:test';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { type LoadBalanceOptions, loadBalance, responseCache } from 'proxy-balancer';
import { loadOpenTelemetry } from '../lib/observe/tracing.js';
import { closeAll, deadPort, listen, request, type TestServer } from './helpers.js';

const INCOMING = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';

/** A backend echoing the trace headers it got; /missing answers 404, /cached is cacheable. */
function upstream(): Promise<TestServer> {
  return listen((req, res) => {
    req.resume();
    res.statusCode = req.url === '/missing' ? 404 : 200;
    if (req.url === '/cached') res.setHeader('cache-control', 'public, max-age=60');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ traceparent: req.headers.traceparent, tracestate: req.headers.tracestate }));
  });
}

interface Seen {
  traceparent?: string;
  tracestate?: string;
}

describe('OpenTelemetry tracing', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const app = trace.getTracer('the-app');
  let up: TestServer;

  before(async () => {
    assert.equal(await loadOpenTelemetry(), true, '@opentelemetry/api loads');
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    up = await upstream();
  });
  after(async () => {
    trace.disable();
    context.disable();
    propagation.disable();
    await provider.shutdown();
    await closeAll(up);
  });
  afterEach(() => exporter.reset());

  /**
   * A front that runs the balancer inside a server span of the app's own when `withParent`, as an
   * HTTP server instrumentation would; returns the parent spans it made.
   */
  async function front(options: Omit<LoadBalanceOptions, 'targets'> & { targets?: string[] }, withParent: boolean) {
    const lb = loadBalance({ targets: [up.url], ...options });
    const parents: string[] = [];
    const server = await listen((req: IncomingMessage, res: ServerResponse) => {
      if (!withParent) return lb(req, res);
      const parent = app.startSpan('server', { kind: SpanKind.SERVER });
      parents.push(parent.spanContext().spanId);
      res.on('close', () => parent.end());
      context.with(trace.setSpan(context.active(), parent), () => lb(req, res));
    });
    return {
      lb,
      parents,
      url: server.url,
      async get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; seen: Seen }> {
        const reply = await request(`${server.url}${path}`, { headers, method });
        const json = reply.headers['content-type'] === 'application/json';
        return { status: reply.status, seen: json ? (JSON.parse(reply.body) as Seen) : {} };
      },
      close: async () => {
        await lb.close();
        await server.close();
      },
    };
  }

  const clientSpans = (): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name === 'proxy-balancer');

  test("a CLIENT span under the app's active span, with HTTP semantic-convention attributes; the backend's traceparent names it", async () => {
    const t = await front({}, true);
    try {
      const { status, seen } = await t.get('/echo/x?y=1');
      assert.equal(status, 200);
      const [span, ...more] = clientSpans();
      assert.ok(span !== undefined && more.length === 0, 'one span');
      assert.equal(span.name, 'GET');
      assert.equal(span.kind, SpanKind.CLIENT);
      assert.equal(span.parentSpanContext?.spanId, t.parents[0]);
      const port = Number(new URL(up.url).port);
      assert.deepEqual(span.attributes, {
        'http.request.method': 'GET',
        'server.address': '127.0.0.1',
        'server.port': port,
        'url.full': `${up.url}/echo/x?y=1`,
        'network.protocol.version': '1.1',
        'http.response.status_code': 200,
        'network.peer.address': '127.0.0.1',
        'network.peer.port': port,
      });
      assert.equal(span.status.code, SpanStatusCode.UNSET);
      const { traceId, spanId } = span.spanContext();
      assert.equal(seen.traceparent, `00-${traceId}-${spanId}-01`);
    } finally {
      await t.close();
    }
  });

  test('without a span of the app, the trace the request came with is continued; tracestate is kept', async () => {
    const t = await front({}, false);
    try {
      const { seen } = await t.get('/', { traceparent: INCOMING, tracestate: TRACESTATE });
      const [span] = clientSpans();
      assert.ok(span);
      assert.equal(span.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
      assert.equal(span.parentSpanContext?.spanId, 'b7ad6b7169203331');
      assert.equal(seen.traceparent, `00-0af7651916cd43dd8448eb211c80319c-${span.spanContext().spanId}-01`);
      assert.equal(seen.tracestate, TRACESTATE);
    } finally {
      await t.close();
    }
  });

  test('each attempt is its own span under the same parent: the failed one with error.type, the retry with resend_count', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const t = await front({ targets: [dead, up.url], strategy: (targets) => targets.find((x) => x.key === dead) }, true);
    try {
      const { status, seen } = await t.get('/');
      assert.equal(status, 200);
      const spans = clientSpans();
      assert.equal(spans.length, 2);
      const [failed, retried] = spans as [ReadableSpan, ReadableSpan];
      for (const span of spans) assert.equal(span.parentSpanContext?.spanId, t.parents[0]);
      assert.equal(failed.attributes['server.port'], Number(new URL(dead).port));
      assert.equal(failed.attributes['error.type'], 'ECONNREFUSED');
      assert.equal(failed.attributes['http.response.status_code'], undefined);
      assert.equal(failed.status.code, SpanStatusCode.ERROR);
      assert.equal(failed.attributes['http.request.resend_count'], undefined);
      assert.equal(retried.attributes['http.request.resend_count'], 1);
      assert.equal(retried.attributes['http.response.status_code'], 200);
      assert.equal(retried.status.code, SpanStatusCode.UNSET);
      assert.equal(seen.traceparent, `00-${retried.spanContext().traceId}-${retried.spanContext().spanId}-01`, 'the retry carries its own span');
    } finally {
      await t.close();
    }
  });

  test('status: a 4xx from the backend and a final 502 are errors; a method outside the conventions is _OTHER', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const t = await front({}, true);
    const failing = await front({ targets: [dead], retry: false }, true);
    try {
      assert.equal((await t.get('/missing')).status, 404);
      assert.equal((await failing.get('/')).status, 502);
      await t.get('/', {}, 'PURGE');
      const [missing, refused, purge] = clientSpans() as [ReadableSpan, ReadableSpan, ReadableSpan];
      assert.deepEqual([missing.attributes['error.type'], missing.status.code], ['404', SpanStatusCode.ERROR]);
      assert.deepEqual([refused.attributes['error.type'], refused.status.code], ['ECONNREFUSED', SpanStatusCode.ERROR]);
      assert.equal(purge.name, 'HTTP');
      assert.equal(purge.attributes['http.request.method'], '_OTHER');
      assert.equal(purge.attributes['http.request.method_original'], 'PURGE');
    } finally {
      await t.close();
      await failing.close();
    }
  });

  test('a cache hit sends nothing upstream, so it has no span', async () => {
    const t = await front({ cache: responseCache() }, true);
    try {
      await t.get('/cached');
      await t.get('/cached');
      assert.equal(clientSpans().length, 1);
    } finally {
      await t.close();
    }
  });

  test('tracing: false makes no span, and traceparent/tracestate reach the backend as they came', async () => {
    const t = await front({ tracing: false }, true);
    try {
      const { seen } = await t.get('/', { traceparent: INCOMING, tracestate: TRACESTATE });
      assert.deepEqual(seen, { traceparent: INCOMING, tracestate: TRACESTATE });
      assert.equal(clientSpans().length, 0);
    } finally {
      await t.close();
    }
  });

  test('with no tracer provider registered, spans are no-ops and the trace headers pass through untouched', async () => {
    trace.disable();
    const t = await front({}, false);
    try {
      const { seen } = await t.get('/', { traceparent: INCOMING, tracestate: TRACESTATE });
      assert.deepEqual(seen, { traceparent: INCOMING, tracestate: TRACESTATE });
      const { seen: none } = await t.get('/');
      assert.deepEqual(none, {}, 'nothing is invented');
      assert.equal(exporter.getFinishedSpans().length, 0);
    } finally {
      await t.close();
      trace.setGlobalTracerProvider(provider);
    }
  });
});
