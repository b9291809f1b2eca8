import type { ClientIpResolver } from '../proxy/client-ip.js';
import { Admission, type AdmissionGate } from './admission.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { ConnectionQueue, type QueueOwner } from './connection-queue.js';
import type { ResolvedProtection } from './options.js';
import { PrematureResets } from './premature-reset.js';
import { AdaptiveConcurrency } from './adaptive-concurrency.js';
import { LoadShedder } from './load-shedding.js';
import type { BalancerEvents } from '../observe/events.js';

/** The protection pieces one balancer runs; each is undefined when its options are off, so the balancer skips it with one check. */
export interface Guards {
  admission: Admission | undefined;
  queue: ConnectionQueue | undefined;
  breaker: CircuitBreaker | undefined;
  /** HTTP/2 sessions closed for resetting their streams early. */
  resets: PrematureResets | undefined;
  /** Adaptive concurrency limits per target. */
  concurrency: AdaptiveConcurrency | undefined;
  /** Sheds requests while the process is overloaded. */
  shedder: LoadShedder | undefined;
}

type Notify = <E extends keyof BalancerEvents>(event: E, ...args: BalancerEvents[E]) => void;

/** Builds the protection pieces the options ask for. */
export function createGuards(
  protection: ResolvedProtection,
  retryAfter: number,
  resolver: ClientIpResolver | undefined,
  owner: AdmissionGate & QueueOwner & { notify: Notify },
): Guards {
  const notify = owner.notify;
  const { adaptiveConcurrency, loadShedding } = protection;
  return {
    admission: protection.admission ? new Admission(protection, resolver, owner) : undefined,
    queue: protection.maxConnections > 0 ? new ConnectionQueue({ ...protection, retryAfter }, owner) : undefined,
    breaker: protection.maxRequests > 0 || protection.maxRetries > 0 ? new CircuitBreaker(protection.maxRequests, protection.maxRetries) : undefined,
    resets: protection.prematureResets && new PrematureResets(protection.prematureResets),
    concurrency: adaptiveConcurrency && new AdaptiveConcurrency(adaptiveConcurrency, (target, change) => notify('concurrencyLimit', target, change)),
    shedder: loadShedding && new LoadShedder(loadShedding, retryAfter, (health) => notify('overload', health)),
  };
}
