import type { TargetSpec } from '../pool.js';

/**
 * A source of targets that change at run time: DNS (`dnsTargets()`), or your own fed by Consul,
 * the Kubernetes API, a file... Given in `targets`, alone or next to static targets. The balancer
 * calls `start` once, at `loadBalance()`, and `stop` at `lb.close()`; between them the source
 * reports the **complete** current set each time it learns it (the balancer adds what is new and
 * drains what is gone), or an error (the balancer keeps the last set it got).
 * One instance serves one balancer.
 */
export interface Discovery {
  /** Names the source in `stats().discovery`, metrics (`discovery` label), the status page and logs, e.g. `'dns api.internal:8080'`. */
  readonly name: string;
  /** Begins discovering; report through `listener`, from now until `stop()`. */
  start(listener: DiscoveryListener): void;
  /** Stops timers and watches; reports made after it are ignored. */
  stop(): void;
}

/** How a `Discovery` reports to its balancer. Both methods may be called at any time, any number of times. */
export interface DiscoveryListener {
  /** The whole current set: targets missing from it are drained, new ones added, changed weights applied. */
  update(targets: readonly TargetSpec[]): void;
  /** This round failed; the last set stays. Counted and logged. */
  error(error: Error): void;
}

/** Whether `value` is a `Discovery` rather than a target spec. */
export function isDiscovery(value: unknown): value is Discovery {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Discovery).start === 'function' &&
    typeof (value as Discovery).stop === 'function' &&
    typeof (value as Discovery).name === 'string'
  );
}
