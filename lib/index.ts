export { loadBalance, type LoadBalancer } from './load-balance.js';
export type { LoadBalanceOptions } from './options.js';
export type { BalancerStats, TargetStats } from './balancer.js';
export { Pool } from './pool.js';
export { Target, type TargetOptions, type TargetSpec, type TargetState } from './target.js';
export type { Strategy, Outcome } from './strategy.js';
export { clientIp, type TrustProxy, type ClientIpHeader } from './client-ip.js';
export { UpstreamTimeoutError } from './errors.js';
export * from './strategies/index.js';
