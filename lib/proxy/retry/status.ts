import { type ClientRequest, type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Pool } from '../../pool.js';
import type { Target } from '../../target.js';
import type { Exchange } from '../exchange.js';
import type { RetryPolicy } from './policy.js';
import { HoldOff } from './retry-after.js';

/** An upstream answered with a status listed in `retry.onStatus`: the `error` of the `retry` event it caused. */
export class UpstreamStatusError extends Error {
  constructor(readonly status: number) {
    super(`upstream answered ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd());
    this.name = 'UpstreamStatusError';
  }
}

/** Largest upstream body read to its end (so its keep-alive connection is kept) when its response is discarded for a retry, bytes. */
const DRAIN_BYTES = 64 * 1024;
/** How long such a body may take to arrive before its connection is destroyed instead, ms. */
const DRAIN_MS = 1000;

/**
 * Retry on listed response statuses (NGINX `proxy_next_upstream http_503`, Envoy `retry_on:
 * retriable-status-codes`). The relay asks `statuses.has()` of every head, which is the only cost
 * on the hot path; only heads with a listed status come here, and only they are ever held back.
 */
export class StatusRetry {
  readonly statuses: ReadonlySet<number>;
  readonly #holdOff: HoldOff | undefined;

  constructor(statuses: ReadonlySet<number>, holdOff: HoldOff | undefined) {
    this.statuses = statuses;
    this.#holdOff = holdOff;
  }

  /**
   * The head of a listed status arrived, nothing relayed yet. A 503's `Retry-After` holds its
   * target off; then, if the retry policy allows another attempt on another target, the response
   * is discarded and true returned. Otherwise (the last attempt) the caller relays it as it is.
   */
  retried(exchange: Exchange, proxyRes: IncomingMessage, status: number): boolean {
    if (status === 503) this.#holdOff?.heard(exchange.target, proxyRes.headers['retry-after']);
    const proxyReq = exchange.proxyReq;
    if (!exchange.owner.retried(exchange, new UpstreamStatusError(status), status)) return false;
    discard(proxyRes, proxyReq);
    return true;
  }

  /** When the target's `Retry-After` hold-off ends (ms since the epoch), 0 when none. */
  heldOffUntil(target: Target): number {
    return this.#holdOff?.until(target) ?? 0;
  }

  close(): void {
    this.#holdOff?.close();
  }
}

/** The status retry of a policy, or undefined when `retry.onStatus` is empty. */
export function statusRetry(policy: RetryPolicy | undefined, pool: Pool): StatusRetry | undefined {
  if (policy === undefined || policy.onStatus.size === 0) return undefined;
  const holdOff = policy.onStatus.has(503) && policy.maxRetryAfter > 0 ? new HoldOff(pool, policy.maxRetryAfter) : undefined;
  return new StatusRetry(policy.onStatus, holdOff);
}

/**
 * Lets go of a response that will not be relayed. After a request sent in full, a body of at most
 * `DRAIN_BYTES` (declared or chunked) is read to its end so the agent keeps the connection: an
 * overloaded target answering 503 is spared a new handshake per retry. A larger body, or one
 * slower than `DRAIN_MS`, destroys the connection instead, as NGINX and Envoy always do.
 */
function discard(proxyRes: IncomingMessage, proxyReq: ClientRequest | undefined): void {
  proxyRes.on('error', ignore);
  const declared = Number(proxyRes.headers['content-length'] ?? 0);
  if (proxyReq?.writableFinished !== true || !(declared <= DRAIN_BYTES || proxyReq.method === 'HEAD')) {
    proxyRes.destroy();
    return;
  }
  let read = 0;
  const timer = setTimeout(destroyResponse, DRAIN_MS, proxyRes);
  timer.unref();
  proxyRes.on('data', (chunk: Buffer) => {
    read += chunk.length;
    if (read > DRAIN_BYTES) proxyRes.destroy();
  });
  proxyRes.once('end', () => clearTimeout(timer));
  proxyRes.once('close', () => clearTimeout(timer));
}

function destroyResponse(proxyRes: IncomingMessage): void {
  proxyRes.destroy();
}

function ignore(): void {}
