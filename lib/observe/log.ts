import createDebug from 'debug';

/**
 * A `debug` logger, as far as the library uses it. Declared here rather than taken from `debug`'s
 * types so that the shipped declarations never name a module whose types a consumer may not have
 * (`debug` ships none; `@types/debug` is only a dev dependency here).
 */
export interface Logger {
  (formatter: unknown, ...args: unknown[]): void;
  /** Whether the namespace is enabled (`DEBUG=proxy-balancer:*`): callers skip building costly messages when not. */
  readonly enabled: boolean;
}

/** Proxying decisions: dispatch, upstream errors, timeouts, aborted exchanges. */
export const logProxy: Logger = createDebug('proxy-balancer:proxy');
/** Membership: targets added, removed, drained; ready-snapshot rebuilds. */
export const logPool: Logger = createDebug('proxy-balancer:pool');
/** Strategy choices, including refusals. */
export const logStrategy: Logger = createDebug('proxy-balancer:strategy');
