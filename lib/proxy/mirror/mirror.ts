import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { mayHaveBody } from '../../protect/reject.js';
import { LOOPBACK_CONNECT } from '../loopback.js';
import { copyBody, type MirrorCopy } from './copy.js';
import type { MirrorPolicySpec } from './options.js';
import { type MirrorAgents, type MirrorListener, MirrorPolicy, type MirrorStats } from './policy.js';

/** What mirroring takes from the balancer's options. */
export interface MirrorSettings {
  /** The balancer's `agentOptions` (TLS `ca`, `rejectUnauthorized`...), for the mirror's own agents. */
  agentOptions: https.AgentOptions;
  /** Send the mirror's host as `Host` instead of the client's (before the `-shadow` suffix). */
  changeOrigin: boolean;
}

/**
 * Request mirroring (`loadBalance({ mirror })`): copies of sampled requests to shadow targets, fire
 * and forget. A copy shares nothing with the client's exchange but the body chunks it is handed:
 * its own agents (keep-alive), its own deadline, and failures that are only counted.
 */
export class Mirror {
  readonly #policies: readonly MirrorPolicy[];
  readonly #agents: MirrorAgents;
  readonly #changeOrigin: boolean;

  constructor(specs: readonly MirrorPolicySpec[], settings: MirrorSettings, listener: MirrorListener) {
    const agentOptions = { scheduling: 'lifo' as const, ...LOOPBACK_CONNECT, ...settings.agentOptions, keepAlive: true };
    this.#agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
    this.#changeOrigin = settings.changeOrigin;
    this.#policies = specs.map((spec) => new MirrorPolicy(spec, this.#agents, listener));
  }

  /**
   * Copies `req` to each policy that selects it. Called once per client request, after its
   * forwarding headers are set and before it is sent upstream; `parsed` is a body a body parser
   * already read (re-serialised), else the body is copied as it streams.
   */
  copy(req: IncomingMessage, parsed: Buffer | undefined): void {
    let copies: MirrorCopy[] | undefined;
    for (const policy of this.#policies) {
      if (!policy.selects(req)) continue;
      const copy = policy.start(req, req.headers.host, this.#changeOrigin);
      if (copy === undefined) continue;
      if (copies === undefined) copies = [copy];
      else copies.push(copy);
    }
    if (copies === undefined) return;
    if (parsed !== undefined) {
      for (const copy of copies) {
        copy.write(parsed);
        copy.end();
      }
    } else if (mayHaveBody(req)) copyBody(req, copies);
    else for (const copy of copies) copy.end();
  }

  stats(): MirrorStats[] {
    return this.#policies.map((policy) => policy.stats());
  }

  /** Aborts the copies in flight and closes the mirror's connections: nobody waits for a copy. */
  close(): void {
    for (const policy of this.#policies) policy.close();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}
