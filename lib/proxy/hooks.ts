import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { logProxy } from '../observe/log.js';
import type { Target } from '../target.js';
import { fail, nestedObject } from '../validate.js';

/**
 * Hooks into each proxied request, as http-proxy-middleware's `on`. They run synchronously on the
 * request path: a hook that throws is reported as a process warning and the request carries on.
 */
export interface ProxyHooks {
  /**
   * The upstream request exists and its head is not sent yet: add or change headers (`proxyReq.setHeader()`).
   * The body is the balancer's (it re-serialises one a body parser consumed): what the hook writes
   * to `proxyReq` is dropped, and the request keeps the balancer's `Content-Length`/`Transfer-Encoding`.
   */
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

const FIX_REQUEST_BODY_UNNEEDED =
  "http-proxy-middleware's fixRequestBody is not needed: the balancer forwards a body that express.json(), urlencoded() or another parser consumed itself";

export function resolveHooks(input: unknown): ProxyHooks | undefined {
  const hooks = nestedObject(input, 'on', HOOKS, { expected: 'an object of hooks { proxyReq?, proxyRes?, error? }', hints: HPM_EVENTS }) as
    | ProxyHooks
    | undefined;
  if (hooks === undefined) return undefined;
  for (const [name, hook] of Object.entries(hooks)) if (typeof hook !== 'function') fail(`on.${name}`, 'a function', hook);
  // The config most often carried over from http-proxy-middleware: run as is, it would write the
  // body a second time after the one the balancer sends. Dropped here so it costs nothing per
  // request; wrapped in a function of the user's, the write guard below catches it instead.
  if (hooks.proxyReq?.name === 'fixRequestBody') {
    process.emitWarning(`options.on.proxyReq is ignored: ${FIX_REQUEST_BODY_UNNEEDED}. Remove it.`, 'ProxyBalancerWarning');
    const { proxyReq: _dropped, ...rest } = hooks;
    return Object.keys(rest).length === 0 ? undefined : rest;
  }
  return hooks;
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

type Guarded = Omit<ClientRequest, 'write' | 'end'> & { write?: unknown; end?: unknown };

// Set by the guards while a proxyReq hook runs; hooks run synchronously, one at a time.
let hookWrote = false;

function refusedWrite(): boolean {
  hookWrote = true;
  return true;
}

function refusedEnd(this: ClientRequest): ClientRequest {
  hookWrote = true;
  return this;
}

/**
 * Runs `on.proxyReq` with the upstream body closed to it, and returns whether the hook tried to
 * write one. The balancer writes the body itself (a parsed one re-serialised, else the client's
 * stream): bytes a hook wrote as well (fixRequestBody inside a function of the user's) would
 * follow the balancer's after the Content-Length, and the backend would read them as a second
 * request. So writes are dropped, and the framing headers are put back to the balancer's in case
 * the hook changed them (fixRequestBody sets its own Content-Length, which for a form may differ
 * from the balancer's encoding). One request in, one request out.
 */
export function runProxyReqHook(hook: NonNullable<ProxyHooks['proxyReq']>, proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): boolean {
  const guarded = proxyReq as unknown as Guarded;
  // Own properties shadowing the prototype's for the hook's duration only: no closure per request.
  guarded.write = refusedWrite;
  guarded.end = refusedEnd;
  hookWrote = false;
  try {
    hook(proxyReq, req, res);
  } catch (err) {
    process.emitWarning(`the on.proxyReq hook threw: ${(err as Error)?.stack ?? String(err)}`, 'ProxyBalancerWarning');
  } finally {
    delete guarded.write;
    delete guarded.end;
  }
  if (!proxyReq.headersSent) {
    keepFraming(proxyReq, 'content-length', req.headers['content-length']);
    keepFraming(proxyReq, 'transfer-encoding', req.headers['transfer-encoding']);
  }
  const wrote = hookWrote;
  hookWrote = false;
  if (wrote && logProxy.enabled) logProxy('on.proxyReq wrote to the upstream request of %s %s: dropped (the balancer sends the body)', req.method, req.url);
  return wrote;
}

function keepFraming(proxyReq: ClientRequest, name: string, value: string | undefined): void {
  const current = proxyReq.getHeader(name);
  if (value === undefined) {
    if (current !== undefined) proxyReq.removeHeader(name);
  } else if (current === undefined || String(current) !== value) {
    proxyReq.setHeader(name, value);
  }
}

/** The warning for a proxyReq hook that wrote a body, once per balancer. */
export const HOOK_WROTE_BODY = `on.proxyReq wrote to the upstream request; what it wrote was dropped. If it calls fixRequestBody, remove that call: ${FIX_REQUEST_BODY_UNNEEDED}.`;
