import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientIpResolver } from '../proxy/client-ip.js';
import { clientIp } from '../proxy/client-ip.js';
import { toOriginForm } from '../proxy/origin-form.js';
import { FILTER_FAILED, filterRejection, type FilterVerdict, type RequestFilter } from './filter.js';
import type { IpFilter } from './ip-filter.js';
import { logProtect } from './log.js';
import type { PathRewriter } from './path-rewrite.js';
import type { RateLimiter } from './rate-limit.js';
import type { RateLimitResult } from './rate-limit-store.js';
import { rejectRequest, rejectUpgrade, type Rejection } from './reject.js';
import { BODY_TOO_LARGE, declaredTooLarge, HEADERS_TOO_LARGE, headersTooLarge, type MethodFilter } from './request-limits.js';
import { isPromise } from '../promise.js';

/** Where admitted requests go next: the balancer. */
export interface AdmissionGate {
  forward(req: IncomingMessage, res: ServerResponse): void;
  forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** The admission checks configured on a balancer; each is off when undefined or 0. */
export interface AdmissionChecks {
  methods: MethodFilter | undefined;
  ipFilter: IpFilter | undefined;
  /** Most header bytes. */
  maxHeaderSize: number;
  /** Largest declared body, bytes (the streaming count is the balancer's). */
  maxBodySize: number;
  pathRewrite: PathRewriter | undefined;
  rateLimit: RateLimiter | undefined;
  filter: RequestFilter | undefined;
}

const FORBIDDEN: Rejection = Object.freeze({ status: 403 });
const REWRITE_REFUSALS: Readonly<Record<number, string>> = { 404: 'no pathRewrite prefix matches', 500: 'pathRewrite function failed' };

/**
 * Runs the admission checks on each request before a target is chosen, cheapest first: method,
 * client IP, header size, declared body size, path confinement, rate limit, then the app's filter.
 * Synchronous checks answer in the same tick; only a Redis-backed rate limit and an async filter
 * make a request wait, and only when configured. Requests it lets through go to the gate; refused
 * ones get their status here and never reach a backend.
 */
export class Admission {
  readonly #checks: AdmissionChecks;
  readonly #resolver: ClientIpResolver | undefined;
  readonly #gate: AdmissionGate;
  readonly #needsIp: boolean;

  constructor(checks: AdmissionChecks, resolver: ClientIpResolver | undefined, gate: AdmissionGate) {
    this.#checks = checks;
    this.#resolver = resolver;
    this.#gate = gate;
    this.#needsIp = checks.ipFilter !== undefined || checks.rateLimit !== undefined || checks.filter !== undefined;
  }

  /** Checks one HTTP request; forwards it or answers it. */
  admit(req: IncomingMessage, res: ServerResponse): void {
    this.#run(req, res, undefined, undefined);
  }

  /** Checks one WebSocket handshake; tunnels it or answers it on the raw socket. */
  admitUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#run(req, undefined, socket, head);
  }

  #run(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex | undefined, head: Buffer | undefined): void {
    if (this.#needsIp) this.#resolver?.resolve(req);
    const checks = this.#checks;
    if (checks.methods !== undefined && !checks.methods.permits(req.method))
      return this.#conclude(req, res, socket, head, checks.methods.refusal, 'method not allowed');
    if (checks.ipFilter !== undefined && !checks.ipFilter.permits(clientIp(req)))
      return this.#conclude(req, res, socket, head, FORBIDDEN, 'client address filtered');
    if (checks.maxHeaderSize > 0 && headersTooLarge(req, checks.maxHeaderSize))
      return this.#conclude(req, res, socket, head, HEADERS_TOO_LARGE, 'header bytes over maxHeaderSize');
    if (checks.maxBodySize > 0 && declaredTooLarge(req, checks.maxBodySize))
      return this.#conclude(req, res, socket, head, BODY_TOO_LARGE, 'declared body over the limit');
    if (checks.pathRewrite !== undefined) {
      // Rewriting needs the path alone; an absolute-form target is reduced first (as the balancer would).
      toOriginForm(req);
      const refused = checks.pathRewrite.rewrite(req);
      if (refused !== undefined) return this.#conclude(req, res, socket, head, refused, REWRITE_REFUSALS[refused.status] ?? 'path escapes its prefix');
    }
    const limiter = checks.rateLimit;
    if (limiter !== undefined) {
      let taken: RateLimitResult | Promise<RateLimitResult> | undefined;
      try {
        taken = limiter.take(req);
      } catch (err) {
        return this.#conclude(req, res, socket, head, FILTER_FAILED, `rate limit key function threw: ${(err as Error)?.message}`);
      }
      if (taken !== undefined && isPromise(taken)) {
        void this.#afterLimit(req, res, socket, head, taken);
        return;
      }
      if (taken !== undefined && !this.#allowed(taken, res)) return this.#conclude(req, res, socket, head, limiter.refusal(taken), 'rate limited');
    }
    this.#runFilter(req, res, socket, head);
  }

  #runFilter(req: IncomingMessage, res: ServerResponse | undefined, socket: Duplex | undefined, head: Buffer | undefined): void {
    const filter = this.#checks.filter;
    if (filter === undefined) return this.#conclude(req, res, socket, head, undefined, '');
    let verdict: FilterVerdict | Promise<FilterVerdict>;
    try {
      verdict = filter(req);
    } catch (err) {
      return this.#conclude(req, res, socket, head, FILTER_FAILED, `filter threw: ${(err as Error)?.message}`);
    }
    if (isPromise(verdict)) {
      void this.#afterFilter(req, res, socket, head, verdict);
      return;
    }
    this.#conclude(req, res, socket, head, filterRejection(verdict), 'refused by filter');
  }

  async #afterLimit(
    req: IncomingMessage,
    res: ServerResponse | undefined,
    socket: Duplex | undefined,
    head: Buffer | undefined,
    taken: Promise<RateLimitResult>,
  ): Promise<void> {
    const limiter = this.#checks.rateLimit!;
    let result: RateLimitResult | undefined;
    try {
      result = await taken;
    } catch (err) {
      if (logProtect.enabled) logProtect('rate-limit store failed (%s): %s', limiter.failOpen ? 'letting the request through' : '503', (err as Error)?.message);
      if (!limiter.failOpen) return this.#conclude(req, res, socket, head, limiter.storeFailed, 'rate-limit store failed');
    }
    if (gone(req, socket)) return;
    if (result !== undefined && !this.#allowed(result, res)) return this.#conclude(req, res, socket, head, limiter.refusal(result), 'rate limited');
    this.#runFilter(req, res, socket, head);
  }

  async #afterFilter(
    req: IncomingMessage,
    res: ServerResponse | undefined,
    socket: Duplex | undefined,
    head: Buffer | undefined,
    pending: Promise<FilterVerdict>,
  ): Promise<void> {
    let rejection: Rejection | undefined;
    let why = 'refused by filter';
    try {
      rejection = filterRejection(await pending);
    } catch (err) {
      rejection = FILTER_FAILED;
      why = `filter rejected: ${(err as Error)?.message}`;
    }
    this.#conclude(req, res, socket, head, rejection, why);
  }

  #allowed(result: RateLimitResult, res: ServerResponse | undefined): boolean {
    if (!result.allowed) return false;
    if (res !== undefined) this.#checks.rateLimit!.decorate(res, result);
    return true;
  }

  #conclude(
    req: IncomingMessage,
    res: ServerResponse | undefined,
    socket: Duplex | undefined,
    head: Buffer | undefined,
    rejection: Rejection | undefined,
    why: string,
  ): void {
    // The client may have left while an async check ran: nothing to forward or answer.
    if (gone(req, socket)) return;
    if (rejection === undefined) {
      if (res !== undefined) this.#gate.forward(req, res);
      else this.#gate.forwardUpgrade(req, socket!, head!);
      return;
    }
    if (logProtect.enabled) logProtect('%d %s %s from %s: %s', rejection.status, req.method, req.url, clientIp(req), why);
    if (res !== undefined) rejectRequest(req, res, rejection);
    else rejectUpgrade(socket!, rejection);
  }
}

function gone(req: IncomingMessage, socket: Duplex | undefined): boolean {
  return socket === undefined ? req.socket.destroyed : socket.destroyed;
}
