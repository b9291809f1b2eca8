import { clientIp } from '../proxy/client-ip.js';
import type { Strategy } from './strategy.js';
import { ConsistentHash, replicasOption } from './consistent-hash.js';
import { markFactory, optionsObject } from '../validate.js';

export interface IpHashOptions {
  /** Virtual nodes per unit of weight; default 160. */
  replicas?: number;
}

/**
 * Consistent hashing on the client address, so a client keeps its target while the pool changes
 * around it. Behind proxies the address comes from the balancer's `trustProxy` rules.
 */
export function ipHash(options: IpHashOptions = {}): Strategy {
  return new ConsistentHash('ip-hash', clientIp, replicasOption(optionsObject(options, 'ipHash', ['replicas']).replicas, 'ipHash'));
}

markFactory(ipHash, 'ipHash()');
