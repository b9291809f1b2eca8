import { type ClientRequest, type IncomingMessage, type InformationEvent, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SessionAffinity } from '../affinity/session-affinity.js';
import type { ResolvedOptions } from '../options.js';
import { logProxy } from '../observe/log.js';
import type { Target } from '../target.js';
import { clampDelay } from '../timer.js';
import { describeConnectError, failureReason, isConnectFailure } from './connect-error.js';
import type { EngineEvents } from './engines/engine.js';
import { markUnprocessed, respondError, statusForError, UpstreamProtocolError, UpstreamTimeoutError } from './errors.js';
import { attach, type Exchange, exchangeOf } from './exchange.js';
import { HOOK_WROTE_BODY, type ProxyHooks, runHook, runProxyReqHook } from './hooks.js';
import { type RelayOptions, reasonPhrase, relayedHeaders, relayedTrailers, writeRelayedHead } from './relay.js';
import { BufferedRelay, type ResponseTransformer } from './transform.js';
import type { StatusRetry } from './retry/status.js';
import { refuseHandshake, watchHandshake } from './tunnel.js';
import { clientGone } from './client-gone.js';
import { isTrailersOnly, relayTrailersOnly } from '../grpc/trailers-only.js';

/** Fewer fields than Node's HTTP client keeps (1000 on Node 24, 1023 on Node 20). */
const FIELD_LIMIT = 1000;

export interface UpstreamOptions {
  /** Milliseconds the upstream may stay silent; 0 for no limit. */
  proxyTimeout: number;
  hooks: ProxyHooks | undefined;
  relay: RelayOptions;
  transformer: ResponseTransformer | undefined;
  affinity: SessionAffinity | undefined;
  /** Retry on the statuses of `retry.onStatus`; undefined when the list is empty. */
  retryOn: StatusRetry | undefined;
}

/**
 * The engine's callbacks for every exchange: they arm the upstream's timers and listeners, relay
 * the response head and body, and turn whatever goes wrong upstream into one failure per attempt.
 * They run per request, so they read state off the exchange instead of closing over it.
 */
export class UpstreamEvents implements EngineEvents {
  readonly #options: UpstreamOptions;
  #warnedHookWrite = false;

  constructor(options: UpstreamOptions) {
    this.#options = options;
  }

  /** The callbacks for a balancer's resolved options and the parts of it they consult. */
  static from(options: ResolvedOptions, affinity: SessionAffinity | undefined, retryOn: StatusRetry | undefined): UpstreamEvents {
    return new UpstreamEvents({
      proxyTimeout: options.proxyTimeout,
      hooks: options.on,
      relay: {
        hidden: new Set(options.hideHeaders),
        rewriteLocation: options.rewriteLocation,
        cookies: options.cookieRewrite,
        xForwarded: options.xForwarded,
        fromHeaderObject: options.on?.proxyRes !== undefined,
      },
      transformer: options.transformer,
      affinity,
      retryOn,
    });
  }

  readonly request = (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined) return;
    exchange.proxyReq = proxyReq;
    attach(proxyReq, exchange);
    if (exchange.ended || exchange.error !== undefined) {
      proxyReq.destroy();
      return;
    }
    if (exchange.tryExpired) {
      proxyReq.destroy(new UpstreamTimeoutError('per-try timeout'));
      return;
    }
    proxyReq.on('information', onInformation);
    proxyReq.on('upgrade', onUnrequestedUpgrade);
    // The client waits for a 100 (the server has a 'checkContinue' listener): let the target decide.
    if (exchange.expectsContinue && !proxyReq.headersSent) {
      proxyReq.setHeader('expect', '100-continue');
      proxyReq.once('continue', onUpstreamContinue);
      // No body byte comes before the 100, so the head would otherwise wait for one forever.
      proxyReq.flushHeaders();
    }
    const hook = this.#options.hooks?.proxyReq;
    // exchange.client: a hedge's `res` is only the holder it is found through.
    if (hook !== undefined && runProxyReqHook(hook, proxyReq, req, exchange.client as ServerResponse) && !this.#warnedHookWrite) {
      this.#warnedHookWrite = true;
      process.emitWarning(HOOK_WROTE_BODY, 'ProxyBalancerWarning');
    }
  };

  readonly response = (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchangeOf(res);
    if (exchange === undefined || exchange.ended || exchange.error !== undefined) {
      proxyRes.destroy();
      return;
    }
    const status = proxyRes.statusCode ?? 0;
    // A listed status (retry.onStatus) may send the request to another target instead of being relayed.
    const retryOn = this.#options.retryOn;
    if (retryOn?.statuses.has(status) && retryOn.retried(exchange, proxyRes, status)) return;
    exchange.responded(status);
    exchange.owner.passed(exchange.target, status, exchange.latency);
    // A hedged request: this head came first; the other attempt is cancelled, and the relay goes to the client response.
    if (exchange.race !== undefined) res = exchange.race.settle(exchange);
    exchange.proxyRes = proxyRes;
    attach(proxyRes, exchange);
    proxyRes.on('close', onUpstreamResponseClose);
    const refusal = unrelayable(proxyRes, status, req.method);
    if (refusal !== undefined) {
      upstreamFailed(exchange, new UpstreamProtocolError(refusal));
      return;
    }
    runHook('proxyRes', this.#options.hooks?.proxyRes, proxyRes, req, res);
    const headers = relayedHeaders(proxyRes, exchange.target, req, this.#options.relay);
    this.#options.affinity?.stamp(req, res, headers, exchange.target);
    const relayedStatus = proxyRes.statusCode ?? status;
    const transformer = this.#options.transformer;
    const contentType = transformer?.takes(proxyRes, req);
    if (contentType !== undefined) {
      new BufferedRelay(exchange, transformer!, res, { status: relayedStatus, reason: reasonPhrase(proxyRes, req), headers, contentType });
      return;
    }
    // A gRPC error answered at once must reach an HTTP/2 client as one HEADERS frame too.
    if (isTrailersOnly(proxyRes) && req.httpVersionMajor === 2 && relayTrailersOnly(res, relayedStatus, headers)) {
      proxyRes.resume();
      return;
    }
    if (!writeRelayedHead(res, relayedStatus, reasonPhrase(proxyRes, req), headers)) {
      upstreamFailed(exchange, new UpstreamProtocolError('upstream response head cannot be relayed'));
      return;
    }
    // Relayed by two shared listeners, not `pipe()`: a pipe adds and later removes seven listeners
    // on the two streams for every response.
    proxyRes.on('data', onUpstreamData);
    proxyRes.on('end', onUpstreamEnd);
    // Node sends an HTTP/1 head with the first body bytes. A body of unknown length may be a
    // stream whose first bytes come much later (server-sent events, a long poll): unless they came
    // with the head, the head goes out on its own. HTTP/2 sends it at writeHead.
    if (req.httpVersionMajor === 1 && proxyRes.headers['content-length'] === undefined) setImmediate(flushHead, proxyRes, res);
  };

  readonly error = (err: Error, req: IncomingMessage, res: ServerResponse, target: Target | undefined): void => {
    describeConnectError(err);
    const exchange = exchangeOf(res);
    if (exchange === undefined) {
      respondError(res, statusForError(err));
      return;
    }
    // A late error from an attempt already retried elsewhere is not the current attempt's failure.
    if (target !== undefined && target !== exchange.target) return;
    // Bytes after a complete response (more body than its Content-Length): the client has its
    // whole answer; Node discards the upstream connection.
    if (exchange.proxyRes?.complete === true) {
      if (logProxy.enabled) logProxy('after a complete response from %s for %s %s: %s', exchange.target.key, req.method, req.url, err.message);
      return;
    }
    if (exchange.proxyRes !== undefined) upstreamFailed(exchange, truncation(err));
    else upstreamFailed(exchange, isConnectFailure(err) ? markUnprocessed(err) : err);
  };

  readonly upgradeRequest = (proxyReq: ClientRequest, _req: IncomingMessage, socket: Duplex): void => {
    const exchange = exchangeOf(socket);
    if (exchange === undefined) return;
    exchange.proxyReq = proxyReq;
    attach(proxyReq, exchange);
    this.#watchUpstream(proxyReq);
    watchHandshake(proxyReq);
  };

  readonly upgradeError = (err: Error, req: IncomingMessage, socket: Duplex): void => {
    const exchange = exchangeOf(socket);
    if (exchange === undefined || !exchange.failed(describeConnectError(err))) return;
    exchange.target.errors++;
    exchange.owner.failedOn(exchange.target, failureReason(err));
    const status = statusForError(err);
    if (logProxy.enabled) logProxy('%d for upgrade %s via %s: %s', status, req.url, exchange.target.key, err.message);
    if (exchange.status === 0) refuseHandshake(socket, status);
  };

  #watchUpstream(proxyReq: ClientRequest): void {
    // Node cuts a socket timeout past what a timer holds down to it, with a warning.
    const timeout = clampDelay(this.#options.proxyTimeout);
    if (timeout === 0) return;
    proxyReq.setTimeout(timeout, onUpstreamIdle);
    // ClientRequest only arms its timer once connected; a blackholed upstream must time out too.
    const socket = proxyReq.socket as Socket | null;
    if (socket?.connecting) socket.setTimeout(timeout);
  }
}

/**
 * One attempt failed: the upstream response (if any) is unpiped and destroyed first, so nothing
 * more of it reaches the client; then the request is retried elsewhere, or answered 502/504 (or,
 * once its head was relayed, its connection is cut).
 */
export function upstreamFailed(exchange: Exchange, err: Error): void {
  if (!exchange.failed(err)) return;
  abandonUpstream(exchange);
  // A client that hung up is not the upstream's fault, and is owed nothing more.
  if (exchange.req.socket.destroyed) return;
  const host = exchange.owner;
  exchange.target.errors++;
  host.failedOn(exchange.target, failureReason(err));
  if (host.retried(exchange, err)) return;
  const status = statusForError(err);
  if (logProxy.enabled) {
    logProxy('%d for %s %s via %s (attempt %d): %s', status, exchange.req.method, exchange.req.url, exchange.target.key, exchange.attempt, err.message);
  }
  host.answerFailure(exchange, err, status);
}

/** Stops relaying the upstream response of a failed attempt and lets go of its connection. */
export function abandonUpstream(exchange: Exchange): void {
  const proxyRes = exchange.proxyRes;
  if (proxyRes === undefined) return;
  attach(proxyRes, undefined);
  proxyRes.unpipe(exchange.client as ServerResponse);
  proxyRes.destroy();
}

/**
 * Why a response head cannot be relayed as it is, or undefined. Node's parser lets through a 101
 * without an Upgrade field as a final response, decodes `chunked` once whatever other codings are
 * listed (so `chunked, chunked` or `gzip, chunked` would leave a still-coded body), and keeps about
 * a thousand fields, dropping the rest silently.
 */
function unrelayable(proxyRes: IncomingMessage, status: number, method: string | undefined): string | undefined {
  if (status < 200) return `interim status ${status} as a final response`;
  const codings = proxyRes.headers['transfer-encoding'];
  const bodiless = method === 'HEAD' || status === 204 || status === 304;
  if (codings !== undefined && !bodiless && codings.toLowerCase() !== 'chunked') return `transfer coding ${JSON.stringify(codings)}`;
  if (proxyRes.rawHeaders.length >= FIELD_LIMIT * 2) return 'more header fields than Node keeps';
  return undefined;
}

// HTTP/1 flushHeaders() sends the head as UTF-8 (an empty string chunk decides the encoding), so a
// header value byte past 0x7f would reach the client as two bytes; an empty Buffer sends it as latin1,
// byte for byte as it arrived. Written through Node's own write, as flushHeaders does, past any
// wrapper of res.write (the cache's compressor would hold an empty chunk, and the head with it).
const NO_BYTES = Buffer.alloc(0);
const nodeWrite = ServerResponse.prototype.write as (this: ServerResponse, chunk: Uint8Array) => boolean;

function flushHead(proxyRes: IncomingMessage, res: ServerResponse): void {
  // headersSent: the head reached Node's own writeHead (a cache holding the response back keeps it from there).
  if (proxyRes.readableDidRead || !res.headersSent || res.writableEnded || clientGone(res)) return;
  if (res.req?.httpVersionMajor === 2) res.flushHeaders();
  else nodeWrite.call(res, NO_BYTES);
}

function onUpstreamIdle(this: ClientRequest): void {
  // Still connecting: not a byte of the request reached the target.
  if (this.socket?.connecting === true) this.destroy(markUnprocessed(new UpstreamTimeoutError('upstream connect timeout')));
  else this.destroy(new UpstreamTimeoutError('upstream idle timeout'));
}

function onUpstreamContinue(this: ClientRequest): void {
  const res = exchangeOf(this)?.client as ServerResponse | undefined;
  if (res !== undefined && !res.headersSent) res.writeContinue();
}

// 103 Early Hints and 102 Processing reach the client before the final response, as they left the target.
function onInformation(this: ClientRequest, info: InformationEvent): void {
  const res = exchangeOf(this)?.client as ServerResponse | undefined;
  if (res === undefined || res.headersSent || clientGone(res)) return;
  if (info.statusCode === 102) {
    res.writeProcessing();
    return;
  }
  if (info.statusCode !== 103) return;
  const links = earlyHintLinks(info.rawHeaders);
  if (links === undefined) return;
  try {
    res.writeEarlyHints({ link: links });
  } catch {
    // A Link value Node will not write is not worth failing the exchange over.
  }
}

function earlyHintLinks(raw: string[]): string[] | undefined {
  const links: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'link') links.push(raw[i + 1]!);
  }
  return links.length === 0 ? undefined : links;
}

// A 101 to a request that asked for no upgrade: the target speaks another protocol now.
function onUnrequestedUpgrade(this: ClientRequest, _res: IncomingMessage, socket: Socket): void {
  socket.destroy();
  const exchange = exchangeOf(this);
  if (exchange !== undefined) upstreamFailed(exchange, new UpstreamProtocolError('101 Switching Protocols without an upgrade request'));
}

// An abandoned attempt's response is detached from its exchange first: its late events relay nothing.
function onUpstreamData(this: IncomingMessage, chunk: Buffer): void {
  const res = exchangeOf(this)?.client as ServerResponse | undefined;
  if (res === undefined || res.write(chunk)) return;
  this.pause();
  res.on('drain', onClientDrain);
}

function onClientDrain(this: ServerResponse): void {
  this.removeListener('drain', onClientDrain);
  exchangeOf(this)?.proxyRes?.resume();
}

function onUpstreamEnd(this: IncomingMessage): void {
  const exchange = exchangeOf(this);
  if (exchange === undefined) return;
  const res = exchange.client as ServerResponse;
  const trailers = relayedTrailers(this);
  if (trailers !== undefined) {
    try {
      res.addTrailers(trailers);
    } catch {
      // Trailer fields Node will not write are dropped; the body itself is complete.
    }
  }
  res.end();
}

// No 'error' listener: Node emits a response's error only to listeners, and the socket error that
// cuts a body reaches the upstream request's 'error' first, cause and all.
function onUpstreamResponseClose(this: IncomingMessage): void {
  // An upstream body cut short must not reach the client as a complete response.
  if (this.complete) return;
  const exchange = exchangeOf(this);
  if (exchange !== undefined) upstreamFailed(exchange, truncation(undefined));
}

function truncation(cause: Error | undefined): UpstreamProtocolError {
  return new UpstreamProtocolError('upstream response ended before its body was complete', cause);
}

// Node answers `Expect: 100-continue` itself unless the server has a 'checkContinue' listener; with
// one, the client is still waiting, and only the target can say whether it wants the body.
export function waitsForContinue(req: IncomingMessage, res: ServerResponse): boolean {
  const expect = req.headers.expect;
  return expect !== undefined && expect.toLowerCase() === '100-continue' && (res as ServerResponse & { _sent100?: boolean })._sent100 !== true;
}
