import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckResult } from '../health/checker.js';
import type { EjectionReason } from '../health/outlier-analysis.js';
import type { ResponseInfo } from './access-log.js';
import type { Target, TargetState } from '../target.js';
import type { StoreHealth } from '../store-guard.js';
import type { MirrorInfo } from '../proxy/mirror/policy.js';
import type { ConcurrencyLimitChange } from '../protect/adaptive-concurrency.js';
import type { ProcessHealth } from '../protect/load-shedding.js';

/** Why a target stopped taking traffic. */
export interface TargetDownInfo {
  /** `down`: failed active checks; `ejected`: failed requests (passive detection). */
  state: Extract<TargetState, 'down' | 'ejected'>;
  /** The active check that took it down, when one did. */
  check: CheckResult | undefined;
}

/** A request being sent again after a failed attempt. */
export interface RetryInfo {
  method: string;
  url: string;
  from: Target;
  to: Target;
  /** 2 for the first retry, 3 for the second... */
  attempt: number;
  /** The failure, or for a retry on a listed status an `UpstreamStatusError` naming it. */
  error: Error;
  /** The response status (in `retry.onStatus`) that caused the retry; undefined after a failure. */
  status: number | undefined;
}

/** A hedge sent: the request's first attempt had no response head after the hedge delay. */
export interface HedgeInfo {
  method: string;
  url: string;
  /** The target of the first attempt, still in flight. */
  from: Target;
  /** The target of the hedge. */
  to: Target;
  /** Milliseconds since the first attempt was sent. */
  after: number;
}

/**
 * Events of a balancer: `lb.on('targetDown', (target, info) => ...)`. Listeners run synchronously
 * inside the balancer, so keep them short (log, count, alert).
 */
export interface BalancerEvents {
  /** A target came (back) into rotation: checks passed again, or an ejection ended. */
  targetUp: [target: Target, from: TargetState];
  /** A target left rotation because it failed. */
  targetDown: [target: Target, info: TargetDownInfo];
  /** Passive detection ejected a target for `durationMs`, for `reason`; `ejections` counts them since it joined. */
  ejected: [target: Target, info: { durationMs: number; ejections: number; reason: EjectionReason }];
  /** A failed attempt (or one answered with a status in `retry.onStatus`) is being sent again. */
  retry: [info: RetryInfo];
  /** A hedged request's first attempt is slow: the request was sent to another target too (`hedge`). */
  hedge: [info: HedgeInfo];
  /** Panic mode turned on (too few targets up: traffic goes to all) or off. */
  panic: [info: { active: boolean; up: number; eligible: number }];
  /**
   * A client exchange finished (completed, refused, failed or abandoned): one per HTTP request the
   * balancer got, for access logs. Costs nothing while no listener is attached.
   */
  response: [info: ResponseInfo, req: IncomingMessage, res: ServerResponse];
  /** A shared store (the cache's or the rate limiter's Redis) failed `failureThreshold` times in a row: its circuit opened, requests go on without it. */
  storeDown: [health: StoreHealth];
  /** A probe of a store whose circuit was open succeeded: it is used again. */
  storeUp: [health: StoreHealth];
  /** A mirror copy (`mirror`) ended (completed or failed) or was skipped (over its budget). Costs nothing while no listener is attached. */
  mirror: [info: MirrorInfo];
  /** A target's adaptive concurrency limit changed (`adaptiveConcurrency`): a window's sampleRTT moved it, or a minRTT measurement pinned or released it. */
  concurrencyLimit: [target: Target, change: ConcurrencyLimitChange];
  /** Load shedding (`loadShedding`) started, changed its reason, or stopped (`health.reason` undefined). */
  overload: [health: ProcessHealth];
}
