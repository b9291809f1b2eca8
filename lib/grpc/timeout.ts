import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Exchange } from '../proxy/exchange.js';

/** Milliseconds per unit of a `grpc-timeout` value (gRPC's PROTOCOL-HTTP2: H M S m u n). */
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
/** A TimeoutValue has at most 8 digits. */
const MAX_VALUE = 99_999_999;

/** Milliseconds a `grpc-timeout` value allows; undefined when it is not 1–8 ASCII digits and a unit. */
export function parseGrpcTimeout(value: string): number | undefined {
  const length = value.length;
  if (length < 2 || length > 9) return undefined;
  const perUnit = UNIT_MS[value[length - 1]!];
  if (perUnit === undefined) return undefined;
  let amount = 0;
  for (let i = 0; i < length - 1; i++) {
    const digit = value.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    amount = amount * 10 + digit;
  }
  return amount * perUnit;
}

/** A `grpc-timeout` value for `ms` milliseconds, rounded down (the upstream's deadline never outlasts the balancer's), at least 1m. */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.floor(ms));
  if (whole <= MAX_VALUE) return `${whole}m`;
  const seconds = Math.floor(whole / 1000);
  if (seconds <= MAX_VALUE) return `${seconds}S`;
  return `${Math.min(MAX_VALUE, Math.floor(seconds / 60))}M`;
}

/**
 * The deadline, ms, of a request that carries `grpc-timeout`: the smaller of it and the configured
 * `timeout` (0: none). Remembers when it ends on the exchange, so a retry forwards only what is
 * left, and forwards the smaller value when `timeout` is the tighter one (Envoy's
 * `max_grpc_timeout` does both). A malformed value is forwarded as it is and bounds nothing.
 */
export function grpcDeadline(exchange: Exchange, req: IncomingMessage, value: string, timeout: number): number {
  const asked = parseGrpcTimeout(value);
  if (asked === undefined) return timeout;
  const ms = Math.max(1, timeout > 0 ? Math.min(asked, timeout) : asked);
  exchange.grpcDeadlineAt = exchange.startedAt + ms;
  if (ms < asked) req.headers['grpc-timeout'] = formatGrpcTimeout(ms);
  return ms;
}

/** Rewrites a retried call's `grpc-timeout` to the time its deadline has left. */
export function forwardRemaining(exchange: Exchange): void {
  exchange.req.headers['grpc-timeout'] = formatGrpcTimeout(exchange.grpcDeadlineAt - performance.now());
}
