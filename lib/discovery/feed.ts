import createDebug from 'debug';
import { parseTarget, type Pool, type TargetOptions, type TargetSpec } from '../pool.js';
import type { Discovery, DiscoveryListener } from './discovery.js';
import { MAX_TIMER_MS } from '../timer.js';

/** Sets received, targets added and drained, failed rounds and the set kept. */
export const logDiscovery = createDebug('proxy-balancer:discovery');

/** One discovery source's figures in `lb.stats().discovery`. */
export interface DiscoveryStats {
  /** The source's `name`. */
  name: string;
  /** Targets in the source's last good set. */
  targets: number;
  /** Sets received since start. */
  updates: number;
  /** Failed rounds since start: errors the source reported, and sets refused as invalid. */
  errors: number;
  /** Targets this source added to the pool since start. */
  added: number;
  /** Targets this source drained from the pool since start. */
  drained: number;
  /** When the last good set arrived, ms since the epoch; 0 before the first. */
  lastUpdate: number;
  /** The latest failure, if any. */
  lastError: { message: string; at: number } | undefined;
  /** Whether the latest report was a failure: the pool holds the last good set, which may be stale. */
  failing: boolean;
}

function noop(): void {}

/** One source: validates its sets and turns each into pool changes. */
class Feed implements DiscoveryListener {
  readonly stats: DiscoveryStats;
  /** Keys of the last good set. */
  #listed = new Set<string>();
  #stopped = false;
  #reported!: () => void;
  readonly reported = new Promise<void>((resolve) => (this.#reported = resolve));

  constructor(
    readonly discovery: Discovery,
    private readonly owner: DiscoveryFeeds,
  ) {
    this.stats = { name: discovery.name, targets: 0, updates: 0, errors: 0, added: 0, drained: 0, lastUpdate: 0, lastError: undefined, failing: false };
  }

  // Arrow properties: a source may call them detached (`const { update } = listener`).
  readonly update = (targets: readonly TargetSpec[]): void => {
    if (this.#stopped) return;
    let next: Map<string, TargetOptions>;
    try {
      next = this.#validate(targets);
    } catch (err) {
      this.error(err as Error);
      return;
    }
    const stats = this.stats;
    stats.updates++;
    stats.lastUpdate = Date.now();
    stats.failing = false;
    stats.targets = next.size;
    const { added, drained } = this.owner.apply(this, this.#listed, next);
    this.#listed = new Set(next.keys());
    stats.added += added;
    stats.drained += drained;
    if (added > 0 || drained > 0) logDiscovery('%s: %d targets (%d added, %d drained)', stats.name, next.size, added, drained);
    this.#reported();
  };

  readonly error = (error: Error): void => {
    if (this.#stopped) return;
    const stats = this.stats;
    const message = error instanceof Error ? error.message : String(error);
    stats.errors++;
    stats.failing = true;
    stats.lastError = { message, at: Date.now() };
    logDiscovery('%s failed, keeping its last %d targets: %s', stats.name, stats.targets, message);
    this.#reported();
  };

  stop(): void {
    this.#stopped = true;
    this.#reported();
  }

  /** The set by key; duplicates (two SRV records for one address) add up their weights. Throws a TypeError naming a bad entry. */
  #validate(targets: readonly TargetSpec[]): Map<string, TargetOptions> {
    if (!Array.isArray(targets)) throw new TypeError(`${this.stats.name}: update() takes an array of targets, got ${typeof targets}`);
    const next = new Map<string, TargetOptions>();
    targets.forEach((spec, i) => {
      const { target } = parseTarget(spec, `${this.stats.name}: targets[${i}]`);
      const seen = next.get(target.key);
      const options = typeof spec === 'object' && !(spec instanceof URL) ? spec : { url: spec };
      next.set(target.key, seen === undefined ? options : { ...seen, weight: (seen.weight ?? 1) + target.configuredWeight });
    });
    return next;
  }
}

/**
 * Runs the balancer's discovery sources and keeps the pool in step with them. A source manages only
 * the targets it added: an address it reports that is already a static target (or one added with
 * `lb.pool.add`) is left alone. A target two sources list stays until neither lists it.
 */
export class DiscoveryFeeds {
  readonly #pool: Pool;
  readonly #feeds: Feed[];
  /** Discovered keys, and the sources that list each (none while a target they dropped drains). */
  readonly #owners = new Map<string, Set<Feed>>();

  constructor(sources: readonly Discovery[], pool: Pool) {
    this.#pool = pool;
    this.#feeds = sources.map((source) => new Feed(source, this));
    try {
      for (const feed of this.#feeds) feed.discovery.start(feed);
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  stats(): DiscoveryStats[] {
    return this.#feeds.map((feed) => ({ ...feed.stats }));
  }

  /** Resolves once every source has reported once, a set or an error. Keeps the process alive meanwhile. */
  async firstRound(): Promise<void> {
    const keepAlive = setInterval(noop, MAX_TIMER_MS);
    try {
      await Promise.all(this.#feeds.map((feed) => feed.reported));
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Stops every source; the targets they found stay in the pool. */
  stop(): void {
    for (const feed of this.#feeds) {
      feed.stop();
      try {
        feed.discovery.stop();
      } catch (err) {
        logDiscovery('%s: stop() threw: %s', feed.stats.name, (err as Error)?.message ?? String(err));
      }
    }
  }

  /** Applies `feed`'s new set over its previous one; returns how many targets joined and how many began draining. */
  apply(feed: Feed, previous: ReadonlySet<string>, next: ReadonlyMap<string, TargetOptions>): { added: number; drained: number } {
    const pool = this.#pool;
    let added = 0;
    let drained = 0;
    for (const [key, spec] of next) {
      const member = pool.get(key);
      let owners = this.#owners.get(key);
      if (owners === undefined) {
        // Someone else's target: not this source's to reweigh or drain.
        if (member !== undefined) continue;
        owners = new Set();
        this.#owners.set(key, owners);
      }
      owners.add(feed);
      // Only real changes reach the pool: re-adding an unchanged target would reset a slow-start ramp.
      if (member === undefined) added++;
      if (member === undefined || member.state === 'draining' || member.configuredWeight !== (spec.weight ?? 1)) pool.add(spec);
    }
    for (const key of previous) {
      if (next.has(key)) continue;
      const owners = this.#owners.get(key);
      if (owners === undefined || !owners.delete(feed) || owners.size > 0) continue;
      if (pool.get(key) === undefined) {
        this.#owners.delete(key);
        continue;
      }
      drained++;
      // Still ours while it drains, so a set listing it again takes it back.
      void pool.drain(key).then(() => {
        if (this.#owners.get(key)?.size === 0) this.#owners.delete(key);
      });
    }
    return { added, drained };
  }
}
