import type { Strategy } from './strategy.js';
import type { Target } from '../target.js';
import { markFactory } from '../validate.js';

/**
 * Each target in turn, ignoring weights. The position survives snapshot changes (taken modulo the
 * new length) instead of restarting at 0, so a pool whose membership flaps does not keep sending
 * the first picks after each change to the same target.
 */
class RoundRobin implements Strategy {
  readonly name = 'round-robin';
  #next = 0;

  pick(targets: readonly Target[]): Target {
    const index = this.#next % targets.length;
    this.#next = index + 1;
    return targets[index];
  }
}

export function roundRobin(): Strategy {
  return new RoundRobin();
}

markFactory(roundRobin, 'roundRobin()');
