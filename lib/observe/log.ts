import createDebug from 'debug';

/** Proxying decisions: dispatch, upstream errors, timeouts, aborted exchanges. */
export const logProxy = createDebug('proxy-balancer:proxy');
/** Membership: targets added, removed, drained; ready-snapshot rebuilds. */
export const logPool = createDebug('proxy-balancer:pool');
/** Strategy choices, including refusals. */
export const logStrategy = createDebug('proxy-balancer:strategy');
