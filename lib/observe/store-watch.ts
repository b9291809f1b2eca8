import type { StoreGuard, StoreHealth } from '../store-guard.js';

type Notify = (event: 'storeDown' | 'storeUp', health: StoreHealth) => void;

/** The shared stores a balancer depends on (its cache's and its rate limiter's), with their circuits relayed as balancer events. */
export class StoreWatch {
  readonly #guards: readonly StoreGuard[];
  readonly #down: (health: StoreHealth) => void;
  readonly #up: (health: StoreHealth) => void;

  /** `guards` may repeat or be undefined (a part without a guarded store); each guard is watched once. */
  constructor(guards: ReadonlyArray<StoreGuard | undefined>, notify: Notify) {
    this.#guards = [...new Set(guards.filter((g): g is StoreGuard => g !== undefined))];
    this.#down = (health) => notify('storeDown', health);
    this.#up = (health) => notify('storeUp', health);
    for (const guard of this.#guards) {
      guard.on('down', this.#down);
      guard.on('up', this.#up);
    }
  }

  /** Undefined when the balancer has no guarded store. */
  health(): StoreHealth[] | undefined {
    return this.#guards.length === 0 ? undefined : this.#guards.map((g) => g.health());
  }

  close(): void {
    for (const guard of this.#guards) {
      guard.off('down', this.#down);
      guard.off('up', this.#up);
    }
  }
}
