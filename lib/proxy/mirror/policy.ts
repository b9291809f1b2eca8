import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { logProxy } from '../../observe/log.js';
import { type CopyOwner, MirrorCopy } from './copy.js';
import type { MirrorPolicySpec } from './options.js';

/** How a copy ended, for the `mirror` event. */
export interface MirrorInfo {
  /** The mirror URL the copy went to (or would have). */
  mirror: string;
  method: string;
  url: string;
  /** `completed`: answered in full (any status); `failed`: error, timeout, or aborted; `skipped`: not sent (over `maxInFlight` or `maxBodyBytes`, or the mirror refused a connection less than 1 s ago). */
  result: 'completed' | 'failed' | 'skipped';
  /** The mirror's response status, 0 when none arrived. */
  status: number;
  /** Why it failed or was skipped. */
  error: Error | undefined;
}

/** A policy's counters in `lb.stats().mirror`. */
export interface MirrorStats {
  /** The mirror URLs of the policy. */
  targets: string[];
  /** Copies sent (started) since the balancer started. */
  sent: number;
  /** Copies answered in full. */
  completed: number;
  /** Copies that failed: connection refused or reset, `timeout`, a body past `maxBodyBytes`, the client's body cut short. */
  failed: number;
  /** Sampled requests not copied: `maxInFlight` copies already in flight, a declared body over `maxBodyBytes`, or a mirror URL held off for 1 s after it refused a connection. */
  skipped: number;
  /** Copies in flight now. */
  inFlight: number;
}

/** What a policy reports to: the `mirror` event when someone listens. */
export interface MirrorListener {
  listening(): boolean;
  report(info: MirrorInfo): void;
}

/** The agents copies go through: the mirror's own, so a slow mirror holds none of the targets' sockets. */
export interface MirrorAgents {
  http: http.Agent;
  https: https.Agent;
}

/** Connect failures after which a mirror URL is held off: nothing listens there, or its name does not resolve. */
const REFUSALS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** How long, ms, a mirror URL that refused a connection gets no copies: a dead mirror costs one connection attempt per second. */
const HOLD_OFF_MS = 1000;

/** One mirror policy with its counters: decides whether a request is copied and sends the copy. */
export class MirrorPolicy implements CopyOwner {
  readonly spec: MirrorPolicySpec;
  readonly timeout: number;
  readonly maxBodyBytes: number;
  readonly #agents: MirrorAgents;
  readonly #listener: MirrorListener;
  readonly #inFlight = new Set<MirrorCopy>();
  /** Per URL: until when (`performance.now()`) it gets no copies after refusing a connection; 0 when not held off. */
  readonly #heldUntil: Float64Array;
  /** Per URL: the address to connect to (an IPv6 one unbracketed). */
  readonly #hostnames: readonly string[];
  /** Per URL: the TLS server name, the mirror's and not the `-shadow` Host Node would take; '' (no SNI) for an address; undefined for `http:`. */
  readonly #servernames: readonly (string | undefined)[];
  #next = 0;
  sent = 0;
  completed = 0;
  failed = 0;
  skipped = 0;

  constructor(spec: MirrorPolicySpec, agents: MirrorAgents, listener: MirrorListener) {
    this.spec = spec;
    this.timeout = spec.timeout;
    this.maxBodyBytes = spec.maxBodyBytes;
    this.#agents = agents;
    this.#listener = listener;
    this.#heldUntil = new Float64Array(spec.urls.length);
    this.#hostnames = spec.urls.map((url) => (url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname));
    this.#servernames = spec.urls.map((url, i) => (url.protocol !== 'https:' ? undefined : isIP(this.#hostnames[i]) === 0 ? url.hostname : ''));
  }

  /** Whether `req` is one this policy copies: its filter, then sampling. */
  selects(req: IncomingMessage): boolean {
    const filter = this.spec.filter;
    if (filter !== undefined) {
      try {
        if (filter(req) !== true) return false;
      } catch (err) {
        process.emitWarning(`a mirror filter threw: ${(err as Error)?.stack ?? String(err)}`, 'ProxyBalancerWarning');
        return false;
      }
    }
    const fraction = this.spec.fraction;
    return fraction === 1 || Math.random() < fraction;
  }

  /**
   * Sends a copy of `req` (whose headers already carry the forwarding headers), or counts it
   * skipped when `maxInFlight` copies are out, its declared body is over `maxBodyBytes`, or the
   * mirror URL is held off after refusing a connection.
   */
  start(req: IncomingMessage, host: string | undefined, changeOrigin: boolean): MirrorCopy | undefined {
    const urls = this.spec.urls;
    const slot = urls.length === 1 ? 0 : this.#next++ % urls.length;
    const url = urls[slot];
    const length = Number(req.headers['content-length'] ?? 0);
    const held = this.#heldUntil[slot];
    if (this.#inFlight.size >= this.spec.maxInFlight || length > this.maxBodyBytes || (held !== 0 && held > performance.now())) {
      this.skipped++;
      if (this.#listener.listening()) {
        const why =
          length > this.maxBodyBytes
            ? 'request body over maxBodyBytes'
            : this.#inFlight.size >= this.spec.maxInFlight
              ? 'maxInFlight copies in flight'
              : 'the mirror refused a connection less than 1 s ago';
        this.#report(url.href, req.method, req.url, 'skipped', 0, new Error(`mirror copy skipped: ${why}`));
      }
      return undefined;
    }
    const headers: OutgoingHttpHeaders = { ...req.headers };
    // The agent manages the copy's connection; a copy never waits for 100 Continue.
    delete headers.connection;
    delete headers.expect;
    const base = changeOrigin || host === undefined ? url.host : host;
    headers.host = this.spec.keepHost ? base : shadowHost(base);
    const secure = url.protocol === 'https:';
    const request = (secure ? https : http).request({
      agent: secure ? this.#agents.https : this.#agents.http,
      protocol: url.protocol,
      hostname: this.#hostnames[slot],
      port: url.port,
      method: req.method,
      path: url.pathname === '/' ? req.url : url.pathname + req.url,
      headers,
      servername: this.#servernames[slot],
    });
    const copy = new MirrorCopy(this, request, url.href, req.url ?? '', slot);
    this.#inFlight.add(copy);
    this.sent++;
    if (logProxy.enabled) logProxy('mirroring %s %s to %s', req.method, req.url, url.href);
    return copy;
  }

  /** Called once per copy when it ends. */
  ended(copy: MirrorCopy, error: Error | undefined): void {
    this.#inFlight.delete(copy);
    if (error === undefined) this.completed++;
    else {
      this.failed++;
      if (REFUSALS.has((error as NodeJS.ErrnoException).code ?? '')) this.#heldUntil[copy.slot] = performance.now() + HOLD_OFF_MS;
    }
    if (logProxy.enabled && error !== undefined) logProxy('mirror copy failed: %s', error.message);
    if (this.#listener.listening()) {
      this.#report(copy.target, copy.request.method, copy.path, error === undefined ? 'completed' : 'failed', copy.status, error);
    }
  }

  /** Aborts every copy in flight (the balancer is closing). */
  close(): void {
    for (const copy of this.#inFlight) copy.abort('balancer closed');
  }

  stats(): MirrorStats {
    return {
      targets: this.spec.urls.map((u) => u.href),
      sent: this.sent,
      completed: this.completed,
      failed: this.failed,
      skipped: this.skipped,
      inFlight: this.#inFlight.size,
    };
  }

  #report(mirror: string, method: string | undefined, url: string | undefined, result: MirrorInfo['result'], status: number, error: Error | undefined): void {
    this.#listener.report({ mirror, method: method ?? '', url: url ?? '', result, status, error });
  }
}

/** Envoy's shadow host: `-shadow` appended to the host name, before the port. */
export function shadowHost(host: string): string {
  const colon = host.lastIndexOf(':');
  return colon > host.lastIndexOf(']') ? `${host.slice(0, colon)}-shadow${host.slice(colon)}` : `${host}-shadow`;
}
