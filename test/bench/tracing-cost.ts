/**
 * Rough cost of tracing one upstream attempt (span start, context injection, span end), outside
 * the proxy: `npx tsx test/bench/tracing-cost.ts`. Four cases: tracing off, @opentelemetry/api
 * loaded with no tracer provider (no-op spans), a provider that records but exports nothing, and
 * one exporting to memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, NoopSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Exchange, type ExchangeOwner } from '../../lib/proxy/exchange.js';
import { endSpan, loadOpenTelemetry, Tracing } from '../../lib/observe/tracing.js';
import { Target } from '../../lib/target.js';

const ROUNDS = 200_000;
const owner: ExchangeOwner = { finish() {}, passed() {}, failedOn() {}, retried: () => false, answerFailure() {} };
const target = new Target(new URL('http://127.0.0.1:3000'), 1);

function measure(label: string, tracing: Tracing | undefined): void {
  const run = (n: number): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const req = { method: 'GET', url: '/api/items?id=1', headers: { host: 'shop.example' } } as unknown as IncomingMessage;
      const exchange = new Exchange(owner, target, req, {} as ServerResponse);
      tracing?.start(exchange);
      exchange.status = 200;
      if (exchange.span !== undefined) endSpan(exchange);
    }
    return Number(process.hrtime.bigint() - start) / n;
  };
  run(ROUNDS / 4);
  console.log(`${label.padEnd(44)} ${run(ROUNDS).toFixed(0).padStart(6)} ns per attempt (request and exchange objects included)`);
}

await loadOpenTelemetry();
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
measure('tracing: false', undefined);
measure('API loaded, no tracer provider', new Tracing());
const recording = new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] });
trace.setGlobalTracerProvider(recording);
measure('provider recording, exporting nothing', new Tracing());
trace.disable();
const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
measure('provider exporting to memory', new Tracing());
