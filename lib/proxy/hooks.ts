import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Target } from '../target.js';
import { fail, nestedObject } from '../validate.js';

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

const HOOKS: readonly string[] = ['proxyReq', 'proxyRes', 'error'];

/** http-proxy-middleware's other `on` events, with what stands for them here. */
const HPM_EVENTS: Readonly<Record<string, string>> = {
  proxyReqWs: "http-proxy-middleware's; WebSocket upgrades take no hook here (the handshake is forwarded as received)",
  open: "http-proxy-middleware's; WebSocket tunnels take no hook here",
  close: "http-proxy-middleware's; WebSocket tunnels take no hook here",
  start: "http-proxy-middleware's; here: lb.on('response', info => …) reports each exchange",
  end: "http-proxy-middleware's; here: lb.on('response', info => …) reports each exchange",
  econnreset: "http-proxy-middleware's; here: on: { error }",
};

export function resolveHooks(input: unknown): ProxyHooks | undefined {
  const hooks = nestedObject(input, 'on', HOOKS, { expected: 'an object of hooks { proxyReq?, proxyRes?, error? }', hints: HPM_EVENTS });
  if (hooks === undefined) return undefined;
  for (const [name, hook] of Object.entries(hooks)) if (typeof hook !== 'function') fail(`on.${name}`, 'a function', hook);
  return hooks as ProxyHooks;
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
