import { createHmac } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { markPrivateCookie } from '../cache/private-cookie.js';
import type { Target } from '../target.js';
import { cookieValue } from './cookie.js';
import type { ResolvedAffinity } from './options.js';

/** Affinity counters, as in `lb.stats().affinity`. */
export interface AffinityStats {
  /** Requests (and WebSocket handshakes) sent to the target their cookie named. */
  sticky: number;
  /** Requests without the cookie, placed by the strategy. */
  placed: number;
  /** Requests whose cookie named no target in the ready snapshot (down, removed, forged, another pool's), placed afresh. */
  replaced: number;
}

/** Bytes of the HMAC kept in a cookie value: 128 bits, 22 base64url characters. */
const VALUE_BYTES = 16;

interface TargetCookie {
  /** What the cookie holds for this target. */
  value: string;
  /** The whole Set-Cookie field value. */
  header: string;
}

/**
 * Cookie-based session affinity over the pool's ready snapshot. A target's cookie value is an
 * HMAC of its key (never its address; not forgeable into naming an arbitrary target; the same on
 * every instance with the same secret and targets). Values are computed once per target and
 * indexed per snapshot, so a request costs one header scan and one map lookup.
 */
export class SessionAffinity {
  readonly #secret: Uint8Array;
  readonly #prefix: string;
  readonly #attributes: string;
  readonly #cookies = new WeakMap<Target, TargetCookie>();
  /** Cookie value → target, for the snapshot `#indexed`. */
  #byValue = new Map<string, Target>();
  #indexed: readonly Target[] | undefined;
  readonly #counts: AffinityStats = { sticky: 0, placed: 0, replaced: 0 };

  constructor(options: ResolvedAffinity) {
    this.#secret = options.secret;
    this.#prefix = `${options.cookie}=`;
    this.#attributes = options.attributes;
  }

  /** The ready target `req`'s cookie names, or undefined for the strategy to place it. */
  sticky(ready: readonly Target[], req: IncomingMessage): Target | undefined {
    const value = cookieValue(req.headers.cookie, this.#prefix);
    if (value === undefined) {
      this.#counts.placed++;
      return undefined;
    }
    if (ready !== this.#indexed) this.#index(ready);
    const target = this.#byValue.get(value);
    if (target === undefined) this.#counts.replaced++;
    else this.#counts.sticky++;
    return target;
  }

  /** Adds the Set-Cookie naming `target` to a response head, unless the request's cookie names it already. */
  stamp(req: IncomingMessage, res: ServerResponse, headers: string[], target: Target): void {
    const cookie = this.#cookieOf(target);
    if (cookieValue(req.headers.cookie, this.#prefix) === cookie.value) return;
    headers.push('set-cookie', cookie.header);
    markPrivateCookie(res, cookie.header);
  }

  stats(): AffinityStats {
    return { ...this.#counts };
  }

  #index(ready: readonly Target[]): void {
    const byValue = new Map<string, Target>();
    for (const target of ready) byValue.set(this.#cookieOf(target).value, target);
    this.#byValue = byValue;
    this.#indexed = ready;
  }

  #cookieOf(target: Target): TargetCookie {
    let cookie = this.#cookies.get(target);
    if (cookie === undefined) {
      const value = createHmac('sha256', this.#secret).update(target.key).digest().subarray(0, VALUE_BYTES).toString('base64url');
      cookie = { value, header: `${this.#prefix}${value}${this.#attributes}` };
      this.#cookies.set(target, cookie);
    }
    return cookie;
  }
}
