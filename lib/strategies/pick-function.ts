import type { IncomingMessage } from 'node:http';
import { logStrategy } from '../observe/log.js';
import type { Target } from '../target.js';
import type { Strategy } from './strategy.js';

/**
 * A strategy as a plain function, `strategy: (targets, req) => target`: http-proxy-middleware's
 * `router`, choosing among the ready targets. Returning undefined, or anything that is not one of
 * `targets`, refuses the request (503), as a strategy picking none does.
 */
export type PickFunction = (targets: readonly Target[], req: IncomingMessage) => Target | undefined;

class FunctionStrategy implements Strategy {
  readonly name: string;
  readonly #pick: PickFunction;
  // Membership of the last snapshot seen, rebuilt only when the pool replaces it.
  #snapshot: readonly Target[] | undefined = undefined;
  #members: ReadonlySet<Target> = new Set();

  constructor(pick: PickFunction) {
    this.#pick = pick;
    // An arrow written inline takes the option's name, which says nothing.
    this.name = pick.name === '' || pick.name === 'strategy' ? 'custom' : pick.name;
  }

  pick(targets: readonly Target[], req: IncomingMessage): Target | undefined {
    let picked: unknown;
    try {
      picked = this.#pick(targets, req);
    } catch (err) {
      process.emitWarning(`the strategy function threw: ${(err as Error)?.stack ?? String(err)}`, 'ProxyBalancerWarning');
      return undefined;
    }
    if (picked === undefined) return undefined;
    if (targets !== this.#snapshot) {
      this.#snapshot = targets;
      this.#members = new Set(targets);
    }
    if (this.#members.has(picked as Target)) return picked as Target;
    if (logStrategy.enabled) logStrategy('the strategy function returned %s, not one of the ready targets', describe(picked));
    return undefined;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' && value !== null
    ? (value as { key?: unknown }).key === undefined
      ? 'an object'
      : `target ${String((value as { key: unknown }).key)}`
    : String(value);
}

/** Wraps a pick function into a `Strategy`. */
export function pickFunction(pick: PickFunction): Strategy {
  return new FunctionStrategy(pick);
}
