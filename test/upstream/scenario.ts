import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBalance, responseCache, type LoadBalanceOptions, type LoadBalancer } from 'proxy-balancer';
import { waitFor } from '../helpers.js';
import { front, type Front } from '../abuse/harness.js';
import { assertComplete, get, NORMAL_BODY, rawBackend, send, within, type ClientReply, type RawBackend, type Script, type SendOptions } from './harness.js';

/** A balancer configuration every misbehaviour case runs under. */
export interface Variant {
  name: string;
  cache: boolean;
  retries: boolean;
  options(): LoadBalanceOptions;
}

/**
 * Retries on (the default: 2 retries, idempotent methods) with and without the response cache, and
 * retries off. Two targets, both the same misbehaving backend, so a retried failure fails again.
 */
export const VARIANTS: readonly Variant[] = [
  { name: 'retries on', cache: false, retries: true, options: () => ({}) },
  { name: 'retries on, cache on', cache: true, retries: true, options: () => ({ cache: responseCache() }) },
  { name: 'retries off', cache: false, retries: false, options: () => ({ retry: false }) },
];

export interface Scene {
  variant: Variant;
  backend: RawBackend;
  lb: LoadBalancer;
  server: Front;
  /** Sends raw request bytes to the balancer's front server. */
  send(parts: string | Array<string | Buffer>, options?: SendOptions): Promise<ClientReply>;
  /**
   * Sends the request and checks the reply with `expect`; with the cache on, sends it again and
   * checks it the same way, and that it reached the backend again (a broken response must not be
   * stored) unless `mayBeStored`.
   */
  check(
    parts: string | Array<string | Buffer>,
    expect: (reply: ClientReply, attempt: number) => void,
    options?: SendOptions & { mayBeStored?: boolean },
  ): Promise<ClientReply>;
}

export interface SceneOptions {
  /** Options merged over the variant's. */
  options?: LoadBalanceOptions;
  /** Listeners (targets) of the raw backend; default 2. */
  targets?: number;
  /** Limit for `lb.close()` and the backend's sockets to be gone; default 3000 ms. */
  closeWithin?: number;
  /** Hand `Expect: 100-continue` requests to the balancer too (`server.on('checkContinue', lb)`), so the target decides; default false (Node answers 100 itself). */
  checkContinue?: boolean;
}

/**
 * Runs `body` against a fresh raw backend, balancer and front server, then checks what every case
 * owes: the process is still up (this code runs), the balancer answers a normal request, no
 * exchange is in flight, `lb.close()` resolves, and the backend sees every socket closed.
 */
export async function scene(variant: Variant, script: Script, body: (scene: Scene) => Promise<void>, options: SceneOptions = {}): Promise<void> {
  const backend = await rawBackend(script, options.targets ?? 2);
  const lb = loadBalance({ targets: backend.urls, ...variant.options(), ...options.options });
  const server = await front(lb, {}, options.checkContinue ? (s) => s.on('checkContinue', lb) : undefined);
  const closeWithin = options.closeWithin ?? 3000;
  const sendTo = (parts: string | Array<string | Buffer>, sendOptions?: SendOptions) => send(server.port, parts, sendOptions);
  let closed = false;
  try {
    const s: Scene = {
      variant,
      backend,
      lb,
      server,
      send: sendTo,
      check: async (parts, expect, checkOptions = {}) => {
        const path = (typeof parts === 'string' ? parts : String(parts[0])).split(' ')[1]!.split('?')[0]!;
        const first = await sendTo(parts, checkOptions);
        expect(first, 1);
        if (variant.cache) {
          const before = backend.hits.get(path) ?? 0;
          const second = await sendTo(parts, checkOptions);
          if (!checkOptions.mayBeStored) assert.ok((backend.hits.get(path) ?? 0) > before, 'the second request was answered from the cache');
          expect(second, 2);
        }
        return first;
      },
    };
    await body(s);
    await waitFor(() => lb.stats().inFlight === 0, 3000);
    assert.equal(lb.stats().inFlight, 0, 'an exchange was left in flight');
    assertComplete(await sendTo(get('/normal')), 200, NORMAL_BODY);
    await waitFor(() => lb.stats().inFlight === 0, 3000);
    assert.equal(lb.stats().inFlight, 0, 'an exchange was left in flight');
    await within(lb.close(), closeWithin, 'lb.close()');
    closed = true;
    await backend.drained(closeWithin);
  } finally {
    if (!closed) await within(lb.close(), closeWithin, 'lb.close()').catch(() => {});
    await server.close();
    await backend.close();
  }
}

/** Declares `name` once per variant (or those `only` keeps). */
export function eachVariant(name: string, fn: (variant: Variant) => Promise<void>, only?: (variant: Variant) => boolean): void {
  for (const variant of VARIANTS) {
    if (only !== undefined && !only(variant)) continue;
    test(`${name} [${variant.name}]`, () => fn(variant));
  }
}

export { describe };
