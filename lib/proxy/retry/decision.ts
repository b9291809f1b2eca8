import { performance } from 'node:perf_hooks';
import type { IncomingMessage } from 'node:http';
import { isUnprocessed } from '../errors.js';
import type { Exchange } from '../exchange.js';
import type { RetryCondition, RetryFailure, RetryPolicy } from './policy.js';

/** How a retry may go: to which targets, and whether it waits for a back-off first. */
export interface RetryScope {
  /** The failed target may take the retry when no untried target is ready. */
  sameTarget: boolean;
  /** The retry waits for a back-off delay (when `retry.backoff` is on). */
  backoff: boolean;
  /** A try `retry.tryDuration` adds past `retries`: it waits `retry.interval`, not a back-off. */
  extra: boolean;
}

const SAME_AT_ONCE: RetryScope = Object.freeze({ sameTarget: true, backoff: false, extra: false });
const OTHER_AT_ONCE: RetryScope = Object.freeze({ sameTarget: false, backoff: false, extra: false });
const OTHER: RetryScope = Object.freeze({ sameTarget: false, backoff: true, extra: false });
const OTHER_OR_SAME: RetryScope = Object.freeze({ sameTarget: true, backoff: true, extra: false });
const EXTRA_TRY: RetryScope = Object.freeze({ sameTarget: true, backoff: true, extra: true });

/** Failures after which the same target is worth another try once it had time to come back: it is restarting. */
const RESTART_CODES = new Set(['ECONNREFUSED', 'ECONNRESET']);

/**
 * Whether the policy lets this attempt be tried again, and how; undefined when not. `status` is
 * the listed response status that triggered it, 0 for a failure before any head. Targets,
 * queue room, the circuit breaker and the budget are the balancer's to check after this.
 */
export function retryScope(policy: RetryPolicy, exchange: Exchange, err: Error, status: number): RetryScope | undefined {
  if (exchange.status !== 0 || exchange.pastDeadline) return undefined;
  if (exchange.body !== undefined && !exchange.body.replayable) return undefined;
  const code = status === 0 ? (err as NodeJS.ErrnoException).code : undefined;
  const extra = exchange.attempt > policy.retries;
  if (extra && !withinTryDuration(policy, exchange, code)) return undefined;
  // A reset on a reused keep-alive socket: the target closed an idle connection as it was reused
  // and never processed the request, so any method may go again, at once.
  const staleSocket = code === 'ECONNRESET' && exchange.proxyReq?.reusedSocket === true;
  // A request no target received (a failed connect, a refused HTTP/2 stream) cannot have taken
  // effect anywhere: any method may go to another target, as gRPC's transparent retry does.
  let allowed = staleSocket || (status === 0 && isUnprocessed(err)) || policy.methods.has(exchange.req.method ?? '');
  if (policy.condition !== undefined) {
    const failure: RetryFailure =
      status === 0 ? { error: err, attempt: exchange.attempt, target: exchange.target } : { status, attempt: exchange.attempt, target: exchange.target };
    const verdict = ask(policy.condition, failure, exchange.req);
    if (verdict !== undefined) allowed = verdict;
  }
  if (!allowed) return undefined;
  if (extra) return EXTRA_TRY;
  if (staleSocket) return SAME_AT_ONCE;
  if (policy.backoff === undefined) return OTHER_AT_ONCE;
  // With a back-off, a target refusing or resetting connections may be restarting: when no other
  // target is ready, waiting and trying it again rides through the restart.
  return code !== undefined && RESTART_CODES.has(code) ? OTHER_OR_SAME : OTHER;
}

/** Whether a target that refused or reset the connection may be tried once more past `retries`: the next try, `interval` from now, still falls within `tryDuration`. */
function withinTryDuration(policy: RetryPolicy, exchange: Exchange, code: string | undefined): boolean {
  return (
    code !== undefined &&
    RESTART_CODES.has(code) &&
    policy.backoff !== undefined &&
    performance.now() + policy.interval - exchange.firstStartedAt <= policy.tryDuration
  );
}

function ask(condition: RetryCondition, failure: RetryFailure, req: IncomingMessage): boolean | undefined {
  try {
    const verdict = condition(failure, req);
    return typeof verdict === 'boolean' ? verdict : undefined;
  } catch (err) {
    process.emitWarning(`retry.condition threw; the default retry decision applies: ${(err as Error)?.stack ?? String(err)}`, 'ProxyBalancerWarning');
    return undefined;
  }
}
