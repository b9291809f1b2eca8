import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { restoreExtend } from './engine-shim.js';
import { LOOPBACK_CONNECT } from '../../loopback.js';
import { forwardPass, type Upstream } from './forward.js';
import { frameUpstreamBody } from './upstream-framing.js';
import { guardIdleSockets } from './idle-sockets.js';
import httpProxy from 'http-proxy';
import type { Target } from '../../../target.js';
import { clampDelay } from '../../../timer.js';
import type { Engine, EngineEvents } from '../engine.js';

restoreExtend();

export interface EngineOptions {
  /** Keep upstream connections open between requests. */
  keepAlive: boolean;
  /** Options for the agents the engine creates (sockets, TLS: `ca`, `rejectUnauthorized`, `servername`...). */
  agentOptions: https.AgentOptions;
  /** A caller-owned agent for `http:` targets (not destroyed on close). */
  agent: http.Agent | undefined;
  /** A caller-owned agent for `https:` targets (not destroyed on close). */
  httpsAgent: https.Agent | undefined;
  /** Send the target's host as `Host` instead of the client's. */
  changeOrigin: boolean;
  /** Milliseconds an upstream connection may stay silent (connecting included); 0 for no limit. */
  proxyTimeout: number;
}

// The call shapes used here. No options object in `web` but for a replayed body: one there makes
// http-proxy copy its configuration.
type Pass = (...args: never[]) => unknown;
interface Proxy {
  webPasses: Pass[];
  wsPasses: Pass[];
  web(req: IncomingMessage, res: ServerResponse, options?: { buffer: Readable }): void;
  ws(req: IncomingMessage, socket: Duplex, head: Buffer, callback: (err: Error, req: IncomingMessage, socket: Duplex) => void): void;
  on(event: string, listener: (...args: never[]) => void): unknown;
}

export class ProxyEngine implements Engine {
  readonly #options: EngineOptions;
  readonly #events: EngineEvents;
  readonly #agent: http.Agent;
  readonly #httpsAgent: https.Agent;
  /** The balancer's `https:` agents by TLS server name, for targets whose name is not in their URL's host (DNS discovery) or differs from `Host`. */
  readonly #namedAgents = new Map<string, https.Agent>();
  readonly #agentOptions: https.AgentOptions;
  // One http-proxy instance per target, configured once: passing per-request options would make
  // http-proxy copy its whole option object on every request.
  readonly #proxies = new WeakMap<Target, Proxy>();

  constructor(options: EngineOptions, events: EngineEvents) {
    this.#options = options;
    this.#events = events;
    // The idle limit on the agents' sockets themselves: a request with the same `timeout` then arms
    // no timer of its own (Node re-arms a socket's only for a request asking another duration).
    const timeout = clampDelay(options.proxyTimeout) || undefined;
    const agentOptions = { keepAlive: options.keepAlive, scheduling: 'lifo' as const, timeout, ...LOOPBACK_CONNECT, ...options.agentOptions };
    this.#agentOptions = agentOptions;
    // Pooled connections that receive anything while idle are dropped (idle-sockets.ts); caller-owned agents are left as they are.
    this.#agent = options.agent ?? guardIdleSockets(new http.Agent(agentOptions));
    this.#httpsAgent = options.httpsAgent ?? guardIdleSockets(new https.Agent(agentOptions));
  }

  /** Proxies one HTTP request to `target`; `body` replaces the request stream (a retry replaying it). */
  web(target: Target, req: IncomingMessage, res: ServerResponse, body?: Readable): void {
    if (body === undefined) this.#proxyFor(target).web(req, res);
    else this.#proxyFor(target).web(req, res, { buffer: body });
  }

  /** Sends a retry of `req` to `target`, replaying `body`. */
  retry(target: Target, req: IncomingMessage, res: ServerResponse, body: Readable): void {
    this.web(target, req, res, body);
  }

  /** Opens a WebSocket tunnel to `target`. */
  ws(target: Target, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#proxyFor(target).ws(req, socket, head, this.#onUpgradeError);
  }

  /** Closes idle upstream connections of the agents this engine created. */
  close(): void {
    if (this.#options.agent === undefined) this.#agent.destroy();
    if (this.#options.httpsAgent === undefined) this.#httpsAgent.destroy();
    for (const agent of this.#namedAgents.values()) agent.destroy();
  }

  /**
   * The agent for a target. Node takes an `https:` request's TLS server name from its `Host`
   * header, which is the client's unless `changeOrigin` is set: an `https:` target then gets an
   * agent of its own name, so SNI and the certificate check use the target's name, as NGINX's
   * `proxy_ssl_server_name on` does. Not with your own `httpsAgent` or an `agentOptions.servername`.
   */
  #agentFor(target: Target): http.Agent {
    if (target.url.protocol !== 'https:') return this.#agent;
    const name = target.host.startsWith('[') ? '' : target.host.replace(/:\d+$/, '');
    if (this.#options.httpsAgent !== undefined || this.#agentOptions.servername !== undefined || name === '' || isIP(name) !== 0) return this.#httpsAgent;
    let agent = this.#namedAgents.get(name);
    if (agent === undefined) {
      agent = guardIdleSockets(new https.Agent({ ...this.#agentOptions, servername: name }));
      this.#namedAgents.set(name, agent);
    }
    return agent;
  }

  #proxyFor(target: Target): Proxy {
    let proxy = this.#proxies.get(target);
    if (proxy === undefined) {
      proxy = this.#createProxy(target);
      this.#proxies.set(target, proxy);
    }
    return proxy;
  }

  #createProxy(target: Target): Proxy {
    const url = target.url;
    const secure = url.protocol === 'https:';
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
    const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
    const agent = this.#agentFor(target);
    const rejectUnauthorized = this.#options.agentOptions.rejectUnauthorized !== false;
    const upstream: Upstream = {
      secure,
      hostname,
      port,
      agent,
      path,
      // What changeOrigin sends as Host: a discovered target's DNS name, not the address it resolved to.
      host: this.#options.changeOrigin ? target.host : undefined,
      rejectUnauthorized,
      timeout: clampDelay(this.#options.proxyTimeout) || undefined,
    };
    // A url.parse-shaped object for the WebSocket pass, which still builds its request itself.
    const wsTarget = { protocol: url.protocol, host: target.host, hostname, port: String(port), path };
    const proxy = httpProxy.createProxyServer({
      target: wsTarget as unknown as string,
      agent,
      secure: rejectUnauthorized,
      changeOrigin: this.#options.changeOrigin,
      // Send req.url as the path unparsed: the balancer has already reduced it to origin-form, and
      // http-proxy's url.parse() is runtime-deprecated on Node 24.
      toProxy: true,
      xfwd: false,
      ws: true,
      // The response is relayed by upstream-events.ts, which can refuse a head Node would not
      // write and stop the body the moment the exchange fails.
      selfHandleResponse: true,
    }) as unknown as Proxy;
    ownPasses(proxy, forwardPass(upstream, target, this.#events));
    proxy.on('proxyReqWs', this.#events.upgradeRequest);
    return proxy;
  }

  readonly #onUpgradeError = (err: Error, req: IncomingMessage, socket: Duplex): void => {
    this.#events.upgradeError(err, req, socket);
  };
}

/**
 * Keeps of http-proxy's per-request passes only those reviewed (docs/security.md). Web: `deleteLength`
 * smuggles (CVE-2026-29057) and is replaced by `frameUpstreamBody`; `timeout` and `XHeaders` do
 * nothing under the options set here (`timeout` unset, `xfwd: false`) and are dropped; `stream`,
 * which builds and pipes the upstream request, is replaced by `forward` (forward.ts says why).
 * WebSocket: `checkMethodAndHeader` and `stream` stay, `XHeaders` goes for the same reason.
 */
function ownPasses(proxy: Proxy, forward: Pass): void {
  passNamed(proxy.webPasses, 'stream');
  proxy.webPasses.splice(0, proxy.webPasses.length, frameUpstreamBody, forward);
  const wsCheck = passNamed(proxy.wsPasses, 'checkMethodAndHeader');
  const wsStream = passNamed(proxy.wsPasses, 'stream');
  proxy.wsPasses.splice(0, proxy.wsPasses.length, wsCheck, wsStream);
}

function passNamed(passes: readonly Pass[], name: string): Pass {
  const pass = passes.find((p) => p.name === name);
  // Another http-proxy release would need its passes reviewed again before it proxies anything.
  if (pass === undefined) throw new Error(`http-proxy has no '${name}' pass: this release of it has not been reviewed`);
  return pass;
}
