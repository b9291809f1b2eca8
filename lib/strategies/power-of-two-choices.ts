import type { Strategy } from './strategy.js';
import type { Target } from '../target.js';
import { markFactory } from '../validate.js';

/**
 * Power of two choices: samples two distinct targets at random and takes the one with fewer
 * requests in flight per unit of weight. Nearly as even as least connections, in O(1) with no
 * shared ordering to maintain, and it never herds every new request onto the same target the way
 * a strict minimum does while counters lag.
 */
class PowerOfTwoChoices implements Strategy {
  readonly name = 'power-of-two-choices';

  pick(targets: readonly Target[]): Target {
    const count = targets.length;
    if (count === 1) return targets[0];
    const first = Math.floor(Math.random() * count);
    // Drawing from count - 1 and skipping `first` keeps the second choice uniform and distinct.
    let second = Math.floor(Math.random() * (count - 1));
    if (second >= first) second++;
    const a = targets[first];
    const b = targets[second];
    return b.inFlight * a.weight < a.inFlight * b.weight ? b : a;
  }
}

export function powerOfTwoChoices(): Strategy {
  return new PowerOfTwoChoices();
}

markFactory(powerOfTwoChoices, 'powerOfTwoChoices()');
