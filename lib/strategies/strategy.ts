import type { IncomingMessage } from 'node:http';
import type { Target } from '../target.js';

/** How one proxied exchange ended, as reported to `Strategy.onEnd`. */
export interface Outcome {
  /** Upstream response status, or 0 when no response head arrived. */
  readonly status: number;
  /** Milliseconds from dispatch to the upstream response head; NaN when none arrived. */
  readonly latency: number;
  /** Why the exchange failed (connect error, reset, timeout), or undefined when it completed. */
  readonly error: Error | undefined;
}

/** What a strategy balances one target by now, for `stats()`, the status page and metrics. */
export interface StrategyTargetStats {
  /** The target's score in the strategy's own unit: of two candidates, the lower is picked. */
  readonly score: number;
  /** The latency estimate behind the score, ms, for strategies that keep one. */
  readonly latency?: number;
  /** Requests sent to the target to refresh a stale estimate (peakEwma's `probe`), for strategies that probe. */
  readonly probes?: number;
}

/**
 * Chooses a target per request. The built-in strategies implement exactly this interface, so a
 * user's class plugs in the same way.
 *
 * `pick` is the hot path: it gets the pool's *ready snapshot* — an immutable array holding only
 * targets that may take traffic now. The pool replaces the array (never mutates it) whenever
 * membership, health or weights change, so a strategy can rebuild derived state (a hash ring, a
 * heap) lazily when `targets !== lastSeen` and keep every pick O(1) or O(log n).
 */
export interface Strategy {
  /** Shown in `stats()` and debug output. */
  readonly name: string;
  /** Returns the target for `req`, or undefined to refuse it (the client gets 503). `targets` is never empty. */
  pick(targets: readonly Target[], req: IncomingMessage): Target | undefined;
  /** Called once per dispatched request or WebSocket tunnel, after `target.inFlight` was incremented. */
  onStart?(target: Target, req: IncomingMessage): void;
  /** Called exactly once after each `onStart`, after `target.inFlight` was decremented. */
  onEnd?(target: Target, outcome: Outcome): void;
  /** What the strategy balances `target` by now; read by `stats()`, never on the request path. */
  targetStats?(target: Target): StrategyTargetStats | undefined;
}
