import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Target } from '../target.js';

/**
 * Hooks into each proxied request, as http-proxy-middleware's `on`. They run synchronously on the
 * request path: a hook that throws is reported as a process warning and the request carries on.
 */
export interface ProxyHooks {
  /** The upstream request exists and its head is not sent yet: add or change headers (`proxyReq.setHeader()`). */
  proxyReq?(proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void;
  /** The upstream response head arrived (hop-by-hop and hidden headers already removed): change `proxyRes.headers` or `proxyRes.statusCode` before it is relayed. */
  proxyRes?(proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void;
  /** A request failed for good (after any retries). Answer `res` yourself (a custom error page); if the hook leaves it unanswered, the default 502/504 follows. */
  error?(err: Error, req: IncomingMessage, res: ServerResponse, target: Target | undefined): void;
}

export function resolveHooks(input: unknown): ProxyHooks | undefined {
  if (input === undefined) return undefined;
  if (typeof input !== 'object' || input === null) throw new TypeError('loadBalance: options.on must be an object of hooks');
  for (const [name, hook] of Object.entries(input)) {
    if (name !== 'proxyReq' && name !== 'proxyRes' && name !== 'error')
      throw new TypeError(`loadBalance: options.on.${name} is not a hook (proxyReq, proxyRes, error)`);
    if (typeof hook !== 'function') throw new TypeError(`loadBalance: options.on.${name} must be a function`);
  }
  return input as ProxyHooks;
}

/** Runs a hook; one that throws is reported, never thrown into the request path. */
export function runHook<A extends unknown[]>(name: string, hook: ((...args: A) => void) | undefined, ...args: A): void {
  if (hook === undefined) return;
  try {
    hook(...args);
  } catch (err) {
    process.emitWarning(`the on.${name} hook threw: ${(err as Error)?.stack ?? String(err)}`, 'ProxyBalancerWarning');
  }
}
