import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Exchange } from '../proxy/exchange.js';
import type { Target } from '../target.js';

// The parts of @opentelemetry/api used here, typed locally: the library neither requires the
// package nor exposes its types, and any 1.x API (which keeps its globals per major version) fits.
type Context = object;
type AttributeValue = string | number;
interface Span {
  isRecording(): boolean;
  setAttribute(key: string, value: AttributeValue): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}
interface Tracer {
  startSpan(name: string, options: { kind: number; attributes: Record<string, AttributeValue> }, context: Context): Span;
}
interface TracerProvider {
  /** On the API's ProxyTracerProvider: the registered provider, or its no-op one. */
  getDelegate?(): unknown;
}
interface OpenTelemetryApi {
  trace: {
    getTracer(name: string): Tracer;
    getTracerProvider(): TracerProvider;
    getSpan(context: Context): unknown;
    setSpan(context: Context, span: Span): Context;
  };
  ProxyTracerProvider: new () => TracerProvider;
  context: { active(): Context };
  propagation: { inject(context: Context, carrier: object): void; extract(context: Context, carrier: object): Context };
}

/** `SpanKind.CLIENT` and `SpanStatusCode.ERROR` of the API, stable across 1.x. */
const CLIENT = 2;
const ERROR = 2;

/** Methods the HTTP semantic conventions name; others are reported as `_OTHER`. */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);

let api: OpenTelemetryApi | undefined;
/** The API's no-op provider: what the global provider delegates to until an SDK registers one. */
let noopProvider: unknown;
let loading: Promise<boolean> | undefined;

/**
 * Loads @opentelemetry/api once per process, if it is installed. Started by the first balancer
 * with tracing on; until it resolves (a few milliseconds), exchanges are not traced.
 */
export function loadOpenTelemetry(): Promise<boolean> {
  loading ??= import('@opentelemetry/api').then(
    (module) => {
      // The named exports (ESM's view of the CommonJS build, or the CommonJS build itself); `default` holds only the five APIs.
      const loaded = (typeof (module as { trace?: unknown }).trace === 'object'
        ? module
        : (module as { default?: unknown }).default) as unknown as OpenTelemetryApi;
      noopProvider = typeof loaded.ProxyTracerProvider === 'function' ? new loaded.ProxyTracerProvider().getDelegate?.() : undefined;
      api = loaded;
      return true;
    },
    () => false,
  );
  return loading;
}

const kParent = Symbol('proxy-balancer.traceParent');
type WithParent = IncomingMessage & { [kParent]?: Context };

/** What the spans of one target share, worked out once (URL getters are not free). */
interface TargetAttributes {
  /** The `url.full` base: the target URL without trailing slash, credentials redacted as the conventions ask. */
  base: string;
  address: string;
  port: number;
}

const targetAttributes = new WeakMap<Target, TargetAttributes>();

function attributesOf(target: Target): TargetAttributes {
  let attributes = targetAttributes.get(target);
  if (attributes === undefined) {
    const url = target.url;
    attributes = {
      base: url.username === '' && url.password === '' ? target.key : target.key.replace(`//${url.username}:${url.password}@`, '//REDACTED:REDACTED@'),
      address: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
    };
    targetAttributes.set(target, attributes);
  }
  return attributes;
}

/**
 * OpenTelemetry CLIENT spans, one per upstream attempt (the HTTP semantic conventions' rule for
 * resent requests: each attempt is its own span, `http.request.resend_count` on retries). The
 * parent is the app's active context, or else the trace context the request arrived with. While no
 * tracer provider is registered (or the sampler records nothing), nothing is done: no header is
 * written, the incoming `traceparent` passes through untouched.
 */
export class Tracing {
  #tracer: Tracer | undefined = undefined;

  constructor() {
    void loadOpenTelemetry();
  }

  /** Starts the span of an attempt about to be sent, and writes its context into the request headers (`traceparent`). */
  start(exchange: Exchange): void {
    const otel = api;
    // Not loaded (yet, or not installed), or no SDK registered: nothing would be recorded.
    if (otel === undefined || otel.trace.getTracerProvider().getDelegate?.() === noopProvider) return;
    this.#tracer ??= otel.trace.getTracer('proxy-balancer');
    const req = exchange.req as WithParent;
    let parent = req[kParent];
    if (parent === undefined) {
      parent = otel.context.active();
      // Without a span of the app's own (no server instrumentation), continue the caller's trace.
      if (otel.trace.getSpan(parent) === undefined) parent = otel.propagation.extract(parent, req.headers);
      req[kParent] = parent;
    }
    const method = req.method ?? 'GET';
    const known = KNOWN_METHODS.has(method);
    const shared = attributesOf(exchange.target);
    const attributes: Record<string, AttributeValue> = {
      'http.request.method': known ? method : '_OTHER',
      'server.address': shared.address,
      'server.port': shared.port,
      'url.full': shared.base + (req.url ?? '/'),
      'network.protocol.version': exchange.target.http2 ? '2' : '1.1',
    };
    if (!known) attributes['http.request.method_original'] = method;
    if (exchange.attempt > 1) attributes['http.request.resend_count'] = exchange.attempt - 1;
    const span = this.#tracer.startSpan(known ? method : 'HTTP', { kind: CLIENT, attributes }, parent);
    if (!span.isRecording()) return;
    otel.propagation.inject(otel.trace.setSpan(parent, span), req.headers);
    exchange.span = span;
  }
}

/** Ends an attempt's span with what became of it. */
export function endSpan(exchange: Exchange): void {
  const span = exchange.span as Span;
  exchange.span = undefined;
  const status = exchange.status;
  if (status !== 0) span.setAttribute('http.response.status_code', status);
  const socket = exchange.proxyReq?.socket as Socket | null | undefined;
  if (socket?.remoteAddress !== undefined) {
    span.setAttribute('network.peer.address', socket.remoteAddress);
    if (socket.remotePort !== undefined) span.setAttribute('network.peer.port', socket.remotePort);
  }
  const err = exchange.error;
  // Client spans count 4xx as errors too; an attempt the client walked away from is 'aborted'.
  const errorType =
    err !== undefined ? ((err as NodeJS.ErrnoException).code ?? err.name) : status >= 400 ? String(status) : status === 0 ? 'aborted' : undefined;
  if (errorType !== undefined) {
    span.setAttribute('error.type', errorType);
    span.setStatus({ code: ERROR, message: err?.message });
  }
  span.end();
}
