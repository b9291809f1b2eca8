import createDebug from 'debug';
import { randomBytes } from 'node:crypto';
import type { StoreGuard } from '../store-guard.js';

const log = createDebug('proxy-balancer:cache');

/** A subscriber connection, as ioredis's `Redis` has it. */
export interface RedisSubscriberLike {
  subscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'ready' | 'close' | 'end' | 'error', listener: (...args: unknown[]) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/**
 * The part of an ioredis client (`Redis`, or `Cluster`) that carries invalidations: they are
 * published on it, and received on a separate subscriber connection made with `duplicate()`
 * (on a Cluster, a duplicate of one node's connection: a PUBLISH reaches every node).
 */
export interface RedisPubSubLike {
  publish(channel: string, message: string): Promise<unknown>;
  duplicate(): unknown;
  ping?(): Promise<unknown>;
  /** ioredis connection state; nothing is published while 'reconnecting', 'close' or 'end'. */
  readonly status?: string;
  readonly isCluster?: boolean;
  nodes?(role: 'all'): Array<{ duplicate(): unknown }>;
}

/** What an invalidation names: one key, or every key under a prefix. */
export type Invalidation = 'key' | 'prefix';

export interface BusEvents {
  /** Another instance invalidated `key` (or every key under it). */
  invalidated(kind: Invalidation, key: string): void;
  /** The subscription went down (false: messages may be missed from now on) or is confirmed again (true). */
  live(live: boolean): void;
}

/** How long to wait before subscribing again on another Cluster node, ms. */
const RESELECT_DELAY = 100;
const ID_LENGTH = 16;

/**
 * Invalidations between the instances sharing one Redis: each message is `<instance id><k|p><key>`,
 * and an instance ignores its own. Redis pub/sub delivers at most once, so whenever the subscriber
 * connection drops the bus reports `live(false)`: the store must then stop trusting what it holds
 * locally until `live(true)`, which comes only after the subscription is confirmed again.
 */
export class InvalidationBus {
  readonly #redis: RedisPubSubLike;
  readonly #channel: string;
  readonly #events: BusEvents;
  readonly #guard: StoreGuard;
  readonly #id = randomBytes(ID_LENGTH / 2).toString('hex');
  #subscriber: RedisSubscriberLike | undefined;
  #retry: NodeJS.Timeout | undefined;
  #live = false;
  #closed = false;

  /** `guard`: the deadline and circuit publishing runs under (the L2 store's, on the same client). */
  constructor(redis: RedisPubSubLike, channel: string, guard: StoreGuard, events: BusEvents) {
    this.#redis = redis;
    this.#guard = guard;
    this.#channel = channel;
    this.#events = events;
    this.#connect();
  }

  get live(): boolean {
    return this.#live;
  }

  /** Tells the other instances; resolves once Redis took the message. Rejects while Redis is down or past the guard's timeout. */
  async publish(kind: Invalidation, key: string): Promise<void> {
    await this.#guard.run(() => this.#redis.publish(this.#channel, `${this.#id}${kind === 'key' ? 'k' : 'p'}${key}`));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#setLive(false);
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber !== undefined) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  #connect(): void {
    if (this.#closed) return;
    const subscriber = this.#duplicate();
    if (subscriber === undefined) {
      // A Cluster client that has not discovered its nodes yet.
      this.#retry = setTimeout(() => this.#connect(), RESELECT_DELAY).unref();
      return;
    }
    this.#subscriber = subscriber;
    // Errors come back as 'close' (and 'end'); the listener keeps ioredis from throwing them.
    subscriber.on('error', (err) => log('invalidation subscriber: %s', (err as Error)?.message));
    subscriber.on('message', (channel, message) => {
      if (channel === this.#channel) this.#receive(message);
    });
    subscriber.on('close', () => {
      if (this.#subscriber === subscriber) this.#setLive(false);
    });
    // ioredis resubscribes by itself on reconnect; asking again confirms it is done (and covers a
    // first SUBSCRIBE refused before the connection was up, with enableOfflineQueue: false).
    subscriber.on('ready', () => this.#confirm(subscriber));
    subscriber.on('end', () => {
      // No more reconnects on this connection (a Cluster node's never retry): pick again, unless
      // the client itself has ended.
      if (this.#subscriber !== subscriber || this.#closed || this.#redis.status === 'end') return;
      this.#subscriber = undefined;
      this.#retry = setTimeout(() => this.#connect(), RESELECT_DELAY).unref();
    });
    this.#confirm(subscriber);
  }

  /** A new subscriber connection: the client's duplicate, or on a Cluster a random node's. */
  #duplicate(): RedisSubscriberLike | undefined {
    if (this.#redis.isCluster !== true) return this.#redis.duplicate() as RedisSubscriberLike;
    const nodes = this.#redis.nodes?.('all') ?? [];
    if (nodes.length === 0) return undefined;
    return nodes[Math.floor(Math.random() * nodes.length)]!.duplicate() as RedisSubscriberLike;
  }

  #confirm(subscriber: RedisSubscriberLike): void {
    subscriber.subscribe(this.#channel).then(
      () => {
        if (this.#subscriber === subscriber && !this.#closed) this.#setLive(true);
      },
      (err: Error) => log('subscribing to invalidations failed: %s', err.message),
    );
  }

  #setLive(live: boolean): void {
    if (this.#live === live) return;
    this.#live = live;
    log(live ? 'invalidation subscription live' : 'invalidation subscription lost');
    this.#events.live(live);
  }

  #receive(message: string): void {
    if (message.startsWith(this.#id)) return;
    const kind = message.charCodeAt(ID_LENGTH);
    const key = message.slice(ID_LENGTH + 1);
    if (kind === 0x6b) this.#events.invalidated('key', key);
    else if (kind === 0x70) this.#events.invalidated('prefix', key);
  }
}
