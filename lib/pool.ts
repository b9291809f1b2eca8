import { logPool } from './log.js';
import { Target, targetKey, type TargetSpec, type TargetState } from './target.js';

const EMPTY: readonly Target[] = Object.freeze([]);

/**
 * The balancer's membership. It owns every target's state and publishes the *ready snapshot*: a
 * frozen array of the targets that may take new traffic, replaced whenever membership, state or
 * weights change, so strategies pick from it without filtering anything per request.
 */
export class Pool {
  readonly #members = new Map<string, Target>();
  readonly #drained = new Map<Target, () => void>();
  #ready: readonly Target[] = EMPTY;

  constructor(specs: readonly TargetSpec[] = []) {
    specs.forEach((spec, i) => this.#insert(parseTarget(spec, `targets[${i}]`)));
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

  /** The member with this URL, if any. */
  get(url: string | URL | Target): Target | undefined {
    return this.#members.get(keyOf(url));
  }

  /**
   * Adds a target (URL or `{ url, weight }`) and returns it. Adding a URL that is already a member
   * updates its weight and puts it back in rotation if it was draining, so a discovery loop can
   * call `add` repeatedly.
   */
  add(spec: TargetSpec): Target {
    const fresh = parseTarget(spec, 'pool.add(target)');
    const existing = this.#members.get(fresh.key);
    if (existing === undefined) {
      this.#insert(fresh);
      logPool('added %s (weight %d)', fresh.key, fresh.weight);
    } else {
      existing.weight = fresh.weight;
      this.#drained.delete(existing);
      if (existing.state === 'draining') existing.state = 'up';
    }
    this.#publish();
    return existing ?? fresh;
  }

  /** Removes a target at once; requests already on it finish. Returns false if it was not a member. */
  remove(url: string | URL | Target): boolean {
    const target = this.get(url);
    if (target === undefined) return false;
    this.#members.delete(target.key);
    this.#settleDrain(target);
    logPool('removed %s (%d in flight)', target.key, target.inFlight);
    this.#publish();
    return true;
  }

  /**
   * Takes a target out of rotation, waits for its in-flight requests (and WebSocket tunnels) to
   * finish, then removes it. Resolves false if it was not a member.
   */
  drain(url: string | URL | Target): Promise<boolean> {
    const target = this.get(url);
    if (target === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#drained.get(target)?.();
      this.#drained.set(target, () => resolve(true));
      target.state = 'draining';
      logPool('draining %s (%d in flight)', target.key, target.inFlight);
      this.#publish();
      this.released(target);
    });
  }

  /** Moves a target between `up` and `down` (health checks); rebuilds the snapshot on change. */
  setState(target: Target, state: Exclude<TargetState, 'draining'>): void {
    if (target.state === state || target.state === 'draining' || this.#members.get(target.key) !== target) return;
    target.state = state;
    logPool('%s is %s', target.key, state);
    this.#publish();
  }

  /** Called by the balancer whenever a request on `target` ends; completes a drain at zero. */
  released(target: Target): void {
    if (target.state === 'draining' && target.inFlight === 0) {
      this.#members.delete(target.key);
      logPool('drained %s', target.key);
      this.#publish();
      this.#settleDrain(target);
    }
  }

  #settleDrain(target: Target): void {
    const resolve = this.#drained.get(target);
    if (resolve === undefined) return;
    this.#drained.delete(target);
    resolve();
  }

  #insert(target: Target): void {
    if (this.#members.has(target.key)) throw new TypeError(`targets: duplicate target ${target.key}`);
    this.#members.set(target.key, target);
  }

  #publish(): void {
    const ready: Target[] = [];
    for (const target of this.#members.values()) if (target.state === 'up') ready.push(target);
    this.#ready = ready.length === 0 ? EMPTY : Object.freeze(ready);
    logPool('ready snapshot: %d of %d targets', ready.length, this.#members.size);
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
  const weight = isObject ? ((spec as { weight?: unknown }).weight ?? 1) : 1;
  let url: URL;
  try {
    url = raw instanceof URL ? new URL(raw.href) : new URL(String(raw));
  } catch {
    throw new TypeError(`${option}: invalid URL ${JSON.stringify(String(raw))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`${option}: URL must use http: or https:, got ${url.protocol}`);
  }
  if (typeof raw !== 'string' && !(raw instanceof URL)) throw new TypeError(`${option}: url must be a string or URL`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`${option}: URL must not carry a query, fragment or credentials`);
  }
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new TypeError(`${option}: weight must be a positive finite number, got ${String(weight)}`);
  }
  return new Target(url, weight);
}
