import { logPool } from './observe/log.js';
import type { HealthCheckSpec } from './health/checker.js';
import { Target, targetKey, type TargetState } from './target.js';
import { invalidOption, knownKeys } from './validate.js';

const EMPTY: readonly Target[] = Object.freeze([]);
/** A host name as it may appear in `Host`: dot-separated labels of letters, digits, `-` and `_`. */
const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*$/;

/** How a target is declared: a URL, or a URL with options. */
export type TargetSpec = string | URL | TargetOptions;

export interface TargetOptions {
  /** Upstream base URL (`http:`, `https:`, or `h2c:` for HTTP/2 without TLS); its path is prepended to every proxied path. */
  url: string | URL;
  /**
   * Speak HTTP/2 to this target: over TLS with ALPN `h2` for an `https:` URL, with prior knowledge
   * (h2c) for an `http:` one; default the balancer's `http2` option (`h2c:` URLs: always true).
   */
  http2?: boolean;
  /** Relative share of traffic for weight-aware strategies. Positive finite number; default 1. */
  weight?: number;
  /** This target's own active health check instead of the pool's, or false for none; default: the pool's. */
  healthCheck?: HealthCheckSpec | false;
  /** A backup (NGINX/HAProxy `backup`): takes new requests only while no primary target is up; default false. */
  backup?: boolean;
  /**
   * The name the target serves under when `url` names its address (DNS discovery sets it): sent in
   * `Host` with `changeOrigin`, and the TLS server name of `https:` targets; default the URL's host name.
   */
  hostname?: string;
}

/** A validated declaration: the target, and its own health check (`false`: none; undefined: the pool's). */
export interface DeclaredTarget {
  target: Target;
  healthCheck: HealthCheckSpec | false | undefined;
}

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
 * Backup targets (`backup: true`) are a second tier: the snapshot holds the up primaries, and only
 * when no primary is up does it hold the up backups instead; once a primary is up again new requests
 * go to primaries (requests already on backups finish there).
 *
 * Panic mode (Envoy's panic threshold): the order is primaries, then backups, then panic. With
 * `panicThreshold` set, a tier serves only while its own share of `up` targets (of its targets that
 * are not draining) reaches the threshold: primaries short of it are joined by the up backups; if
 * the backups are short of it too (or there are none), the snapshot holds every target that is not
 * draining, primaries and backups, so traffic keeps flowing to possibly-failed targets instead of
 * every request getting 503.
 */
export class Pool {
  readonly #members = new Map<string, Target>();
  readonly #flags = new Map<Target, Flags>();
  /** Targets declared with their own health check (or `false`), kept here so `Target` needs no health types. */
  readonly #ownChecks = new Map<Target, HealthCheckSpec | false>();
  readonly #drained = new Map<Target, (removed: boolean) => void>();
  readonly #draining = new Map<Target, Promise<boolean>>();
  /** Up targets kept out of the snapshot while another is ready (a 503 with `Retry-After`). */
  readonly #heldOff = new Set<Target>();
  readonly #panicThreshold: number;
  #observer: PoolObserver | undefined;
  #ready: readonly Target[] = EMPTY;
  #panic = false;
  #onBackups = false;
  #standby: readonly Target[] = EMPTY;

  /** Whether targets that do not say speak HTTP/2 (the balancer's `http2` option). */
  readonly #http2: boolean;

  constructor(specs: readonly TargetSpec[] = [], panicThreshold = 0, http2 = false) {
    this.#panicThreshold = panicThreshold;
    this.#http2 = http2;
    specs.forEach((spec, i) => {
      this.#insert(parseTarget(spec, `targets[${i}]`, http2));
    });
    this.#publish();
  }

  /** The health check `target` was declared with (`false`: none), or undefined when it uses the pool's. */
  healthCheckOf(target: Target): HealthCheckSpec | false | undefined {
    return this.#ownChecks.get(target);
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

  /** Whether backup targets are serving: too few primaries are up (none, with panic mode off). */
  get onBackups(): boolean {
    return this.#onBackups;
  }

  /** Up backups kept out of the ready snapshot while primaries serve: where a request that failed on every primary may go (NGINX's `proxy_next_upstream` to a backup). */
  get standby(): readonly Target[] {
    return this.#standby;
  }

  /** The member with this URL, if any. */
  get(url: string | URL | Target): Target | undefined {
    return this.#members.get(keyOf(url));
  }

  /**
   * Adds a target (URL or `{ url, weight, healthCheck, backup }`) and returns it. Adding a URL that
   * is already a member updates its weight and backup flag and puts it back in rotation if it was
   * draining, so a discovery loop can call `add` repeatedly.
   */
  add(spec: TargetSpec): Target {
    const declared = parseTarget(spec, 'pool.add(target)', this.#http2);
    const fresh = declared.target;
    const existing = this.#members.get(fresh.key);
    if (existing === undefined) {
      this.#insert(declared);
      logPool('added %s (weight %d)', fresh.key, fresh.weight);
      this.#observer?.added(fresh);
      this.#publish();
      return fresh;
    }
    existing.configuredWeight = fresh.configuredWeight;
    existing.weight = fresh.configuredWeight;
    existing.backup = fresh.backup;
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

  #insert({ target, healthCheck }: DeclaredTarget): void {
    if (this.#members.has(target.key)) throw new TypeError(`targets: duplicate target ${target.key}`);
    this.#members.set(target.key, target);
    this.#flags.set(target, { healthy: true, ejected: false, draining: false });
    if (healthCheck !== undefined) this.#ownChecks.set(target, healthCheck);
  }

  #delete(target: Target): void {
    this.#members.delete(target.key);
    this.#flags.delete(target);
    this.#heldOff.delete(target);
    this.#observer?.removed(target);
    this.#ownChecks.delete(target);
  }

  #publish(): void {
    const primaries: Target[] = [];
    const backups: Target[] = [];
    const heldOff: Target[] = [];
    let eligiblePrimaries = 0;
    let eligibleBackups = 0;
    let upPrimaries = 0;
    let upBackups = 0;
    for (const target of this.#members.values()) {
      if (target.state === 'draining') continue;
      const up = target.state === 'up';
      if (target.backup) {
        eligibleBackups++;
        if (up) upBackups++;
      } else {
        eligiblePrimaries++;
        if (up) upPrimaries++;
      }
      if (!up) continue;
      if (this.#heldOff.has(target)) heldOff.push(target);
      else if (target.backup) backups.push(target);
      else primaries.push(target);
    }
    // Primaries, then backups, then panic: each tier is judged by its own share of up targets. A
    // target held off after a 503 with Retry-After counts as up but takes no new requests, unless
    // nothing else is ready.
    let ready = primaries;
    let onBackups = false;
    let panic = false;
    if (!this.#enough(upPrimaries, eligiblePrimaries)) {
      if (this.#enough(upBackups, eligibleBackups)) {
        // Backups make up for missing primaries; the primaries still up keep serving.
        ready = primaries.length === 0 ? backups : [...primaries, ...backups];
        onBackups = true;
      } else if (this.#panicThreshold > 0 && eligiblePrimaries + eligibleBackups > 0) {
        ready = [...this.#members.values()].filter((t) => t.state !== 'draining');
        panic = true;
      }
    }
    if (ready.length === 0) ready = heldOff;
    this.#ready = ready.length === 0 ? EMPTY : Object.freeze(ready);
    this.#standby = onBackups || panic || backups.length === 0 ? EMPTY : Object.freeze(backups);
    if (onBackups !== this.#onBackups) {
      this.#onBackups = onBackups;
      logPool('backups %s: %d of %d primaries up', onBackups ? 'ON' : 'off', primaries.length, eligiblePrimaries);
    }
    if (panic !== this.#panic) {
      this.#panic = panic;
      const up = primaries.length + backups.length;
      const eligible = eligiblePrimaries + eligibleBackups;
      logPool('panic mode %s: %d of %d eligible targets up', panic ? 'ON' : 'off', up, eligible);
      this.#observer?.panicChanged(panic, up, eligible);
    }
    if (logPool.enabled) logPool('ready snapshot: %d of %d targets', ready.length, this.#members.size);
  }

  /** Whether `up` of `eligible` targets is enough to serve from: at least one, and not below the panic threshold. */
  #enough(up: number, eligible: number): boolean {
    return up > 0 && up * 100 >= this.#panicThreshold * eligible;
  }
}

function keyOf(url: string | URL | Target): string {
  if (url instanceof Target) return url.key;
  try {
    return targetKey(withoutH2c(url instanceof URL ? url : new URL(url)));
  } catch {
    return String(url);
  }
}

/** The fields of a target object: any other is a typo, which must not be silently ignored. */
const TARGET_FIELDS = ['url', 'weight', 'healthCheck', 'backup', 'hostname', 'http2'];

/** An `h2c:` URL as the `http:` one it stands for (a target's key and URL are `http:`; its `http2` flag says h2c). */
function withoutH2c(url: URL): URL {
  return url.protocol === 'h2c:' ? new URL(`http:${url.href.slice(4)}`) : url;
}

/** Validates one target declaration; errors name the option they came from (`targets[0]`, `pool.add(target)`); `http2` is the balancer's default. */
export function parseTarget(spec: TargetSpec, option: string, http2 = false): DeclaredTarget {
  const fields = typeof spec === 'object' && spec !== null && !(spec instanceof URL) ? (spec as unknown as Record<string, unknown>) : undefined;
  if (fields !== undefined) knownKeys(fields, '', TARGET_FIELDS, option);
  const raw = fields === undefined ? spec : fields.url;
  if (typeof raw !== 'string' && !(raw instanceof URL)) invalidOption(`${option}: url`, '', 'a string or URL', raw);
  let url: URL;
  try {
    url = new URL(raw instanceof URL ? raw.href : raw);
  } catch {
    throw new TypeError(`${option}: invalid URL ${JSON.stringify(String(raw))}`);
  }
  const h2c = url.protocol === 'h2c:';
  if (h2c) url = withoutH2c(url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`${option}: URL must use http: or https: (or h2c: for HTTP/2 with prior knowledge), got ${url.protocol}`);
  }
  const ownHttp2 = fields?.http2;
  if (ownHttp2 !== undefined && typeof ownHttp2 !== 'boolean') invalidOption(`${option}: http2`, '', 'a boolean', ownHttp2);
  if (h2c && ownHttp2 === false) {
    throw new TypeError(`${option}: http2 is false but the URL is h2c: (HTTP/2 with prior knowledge); use an http: URL for HTTP/1.1`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`${option}: URL must not carry a query, fragment or credentials`);
  }
  const weight = fields?.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) invalidOption(`${option}: weight`, '', 'a positive finite number', weight);
  const healthCheck = fields?.healthCheck;
  if (
    healthCheck !== undefined &&
    healthCheck !== false &&
    typeof healthCheck !== 'function' &&
    typeof (healthCheck as { check?: unknown })?.check !== 'function'
  ) {
    invalidOption(`${option}: healthCheck`, '', 'a health checker, a probe function or false', healthCheck);
  }
  const backup = fields?.backup ?? false;
  if (typeof backup !== 'boolean') invalidOption(`${option}: backup`, '', 'a boolean', backup);
  const hostname = fields?.hostname;
  if (hostname !== undefined && (typeof hostname !== 'string' || !HOSTNAME.test(hostname))) {
    throw new TypeError(`${option}: hostname must be a DNS name, got ${JSON.stringify(hostname)}`);
  }
  const speaksHttp2 = h2c || ((ownHttp2 as boolean | undefined) ?? http2);
  return {
    target: new Target(url, weight, backup, hostname as string | undefined, speaksHttp2),
    healthCheck: healthCheck as HealthCheckSpec | false | undefined,
  };
}
