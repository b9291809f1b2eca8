import { logPool } from './observe/log.js';
import { Target, targetKey, type TargetSpec, type TargetState } from './target.js';

const EMPTY: readonly Target[] = Object.freeze([]);

/** What the balancer's health layers hear from the pool. */
export interface PoolObserver {
  added(target: Target): void;
  removed(target: Target): void;
  stateChanged(target: Target, from: TargetState, to: TargetState): void;
  panicChanged(panic: boolean, up: number, eligible: number): void;
}

interface Flags {
  /** The active health checker's verdict. */
  healthy: boolean;
  /** Passive detection's verdict. */
  ejected: boolean;
  draining: boolean;
}

/**
 * The balancer's membership. It owns every target's state and publishes the *ready snapshot*: a
 * frozen array of the targets that may take new traffic, replaced whenever membership, state or
 * weights change, so strategies pick from it without filtering anything per request.
 *
 * Panic mode (Envoy's panic threshold): when the share of `up` targets falls below
 * `panicThreshold` percent, the snapshot holds every target that is not draining, so traffic keeps
 * flowing to possibly-failed targets instead of every request getting 503.
 */
export class Pool {
  readonly #members = new Map<string, Target>();
  readonly #flags = new Map<Target, Flags>();
  readonly #drained = new Map<Target, (removed: boolean) => void>();
  readonly #draining = new Map<Target, Promise<boolean>>();
  /** Up targets kept out of the snapshot while another is ready (a 503 with `Retry-After`). */
  readonly #heldOff = new Set<Target>();
  readonly #panicThreshold: number;
  #observer: PoolObserver | undefined;
  #ready: readonly Target[] = EMPTY;
  #panic = false;

  constructor(specs: readonly TargetSpec[] = [], panicThreshold = 0) {
    this.#panicThreshold = panicThreshold;
    specs.forEach((spec, i) => {
      this.#insert(parseTarget(spec, `targets[${i}]`));
    });
    this.#publish();
  }

  /** Targets that may take new requests now; a new array after every change, never mutated. */
  get ready(): readonly Target[] {
    return this.#ready;
  }

  /** Every member, whatever its state. */
  get targets(): Target[] {
    return [...this.#members.values()];
  }

  /** Whether panic mode is on: too few targets are up, so the snapshot holds all but draining ones. */
  get panic(): boolean {
    return this.#panic;
  }

  /** The member with this URL, if any. */
  get(url: string | URL | Target): Target | undefined {
    return this.#members.get(keyOf(url));
  }

  /**
   * Adds a target (URL or `{ url, weight, healthCheck }`) and returns it. Adding a URL that is
   * already a member updates its weight and puts it back in rotation if it was draining, so a
   * discovery loop can call `add` repeatedly.
   */
  add(spec: TargetSpec): Target {
    const fresh = parseTarget(spec, 'pool.add(target)');
    const existing = this.#members.get(fresh.key);
    if (existing === undefined) {
      this.#insert(fresh);
      logPool('added %s (weight %d)', fresh.key, fresh.weight);
      this.#observer?.added(fresh);
      this.#publish();
      return fresh;
    }
    existing.configuredWeight = fresh.configuredWeight;
    existing.weight = fresh.configuredWeight;
    // Added back while draining: the drain is called off, and its promise says the target stayed.
    this.#settleDrain(existing, false);
    this.#update(existing, { draining: false });
    this.#publish();
    return existing;
  }

  /** Removes a target at once; requests already on it finish. Returns false if it was not a member. */
  remove(url: string | URL | Target): boolean {
    const target = this.get(url);
    if (target === undefined) return false;
    this.#delete(target);
    logPool('removed %s (%d in flight)', target.key, target.inFlight);
    this.#publish();
    this.#settleDrain(target, true);
    return true;
  }

  /**
   * Takes a target out of rotation, waits for its in-flight requests (and WebSocket tunnels) to
   * finish, then removes it and resolves true. Resolves false if it was not a member, or if it was
   * added back before the drain completed.
   */
  drain(url: string | URL | Target): Promise<boolean> {
    const target = this.get(url);
    if (target === undefined) return Promise.resolve(false);
    const pending = this.#draining.get(target);
    if (pending !== undefined) return pending;
    const drained = new Promise<boolean>((resolve) => {
      this.#drained.set(target, resolve);
      logPool('draining %s (%d in flight)', target.key, target.inFlight);
      this.#update(target, { draining: true });
      this.#publish();
    });
    this.#draining.set(target, drained);
    this.released(target);
    return drained;
  }

  /** Records the active health checker's verdict. */
  setHealthy(target: Target, healthy: boolean): void {
    if (this.#update(target, { healthy })) this.#publish();
  }

  /** Records passive detection's verdict. */
  setEjected(target: Target, ejected: boolean): void {
    if (this.#update(target, { ejected })) this.#publish();
  }

  /**
   * Holds an up target out of the ready snapshot (it answered 503 with `Retry-After`), or lets it
   * back. A hold-off steers traffic only: held targets still count as up for panic mode, and they
   * are back in the snapshot whenever no other target is ready.
   */
  setHeldOff(target: Target, heldOff: boolean): void {
    if (!this.#flags.has(target) || this.#heldOff.has(target) === heldOff) return;
    if (heldOff) this.#heldOff.add(target);
    else this.#heldOff.delete(target);
    this.#publish();
  }

  /** Republishes the snapshot after weights changed in place (slow start). */
  refresh(): void {
    this.#publish();
  }

  /** Subscribes the balancer's health layers; one observer per pool. */
  observe(observer: PoolObserver): void {
    this.#observer = observer;
    for (const target of this.#members.values()) observer.added(target);
  }

  /** Called by the balancer whenever a request on `target` ends; completes a drain at zero. */
  released(target: Target): void {
    if (target.state === 'draining' && target.inFlight === 0 && this.#members.get(target.key) === target) {
      this.#delete(target);
      logPool('drained %s', target.key);
      this.#publish();
      this.#settleDrain(target, true);
    }
  }

  /** Applies flag changes; returns whether the target's state changed. */
  #update(target: Target, change: Partial<Flags>): boolean {
    const flags = this.#flags.get(target);
    if (flags === undefined) return false;
    Object.assign(flags, change);
    const from = target.state;
    const to: TargetState = flags.draining ? 'draining' : flags.ejected ? 'ejected' : flags.healthy ? 'up' : 'down';
    if (from === to) return false;
    target.state = to;
    logPool('%s: %s -> %s', target.key, from, to);
    this.#observer?.stateChanged(target, from, to);
    return true;
  }

  #settleDrain(target: Target, removed: boolean): void {
    const resolve = this.#drained.get(target);
    if (resolve === undefined) return;
    this.#drained.delete(target);
    this.#draining.delete(target);
    resolve(removed);
  }

  #insert(target: Target): void {
    if (this.#members.has(target.key)) throw new TypeError(`targets: duplicate target ${target.key}`);
    this.#members.set(target.key, target);
    this.#flags.set(target, { healthy: true, ejected: false, draining: false });
  }

  #delete(target: Target): void {
    this.#members.delete(target.key);
    this.#flags.delete(target);
    this.#heldOff.delete(target);
    this.#observer?.removed(target);
  }

  #publish(): void {
    let up: Target[] = [];
    const heldOff: Target[] = [];
    let eligible = 0;
    for (const target of this.#members.values()) {
      if (target.state === 'up') (this.#heldOff.has(target) ? heldOff : up).push(target);
      if (target.state !== 'draining') eligible++;
    }
    const panic = this.#panicThreshold > 0 && eligible > 0 && ((up.length + heldOff.length) / eligible) * 100 < this.#panicThreshold;
    if (up.length === 0) up = heldOff;
    const ready = panic ? [...this.#members.values()].filter((t) => t.state !== 'draining') : up;
    this.#ready = ready.length === 0 ? EMPTY : Object.freeze(ready);
    if (panic !== this.#panic) {
      this.#panic = panic;
      logPool('panic mode %s: %d of %d eligible targets up', panic ? 'ON' : 'off', up.length, eligible);
      this.#observer?.panicChanged(panic, up.length, eligible);
    }
    if (logPool.enabled) logPool('ready snapshot: %d of %d targets', ready.length, this.#members.size);
  }
}

function keyOf(url: string | URL | Target): string {
  if (url instanceof Target) return url.key;
  try {
    return targetKey(url instanceof URL ? url : new URL(url));
  } catch {
    return String(url);
  }
}

/** Validates one target declaration; errors name the option they came from. */
export function parseTarget(spec: TargetSpec, option: string): Target {
  const isObject = typeof spec === 'object' && spec !== null && !(spec instanceof URL);
  const raw = isObject ? (spec as { url: unknown }).url : spec;
  if (typeof raw !== 'string' && !(raw instanceof URL)) throw new TypeError(`${option}: url must be a string or URL`);
  let url: URL;
  try {
    url = new URL(raw instanceof URL ? raw.href : raw);
  } catch {
    throw new TypeError(`${option}: invalid URL ${JSON.stringify(String(raw))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`${option}: URL must use http: or https:, got ${url.protocol}`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`${option}: URL must not carry a query, fragment or credentials`);
  }
  const weight = isObject ? ((spec as { weight?: unknown }).weight ?? 1) : 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new TypeError(`${option}: weight must be a positive finite number, got ${String(weight)}`);
  }
  const healthCheck = isObject ? (spec as { healthCheck?: unknown }).healthCheck : undefined;
  if (
    healthCheck !== undefined &&
    healthCheck !== false &&
    typeof healthCheck !== 'function' &&
    typeof (healthCheck as { check?: unknown })?.check !== 'function'
  ) {
    throw new TypeError(`${option}: healthCheck must be a health checker, a probe function or false`);
  }
  return new Target(url, weight, healthCheck as Target['healthCheck']);
}
