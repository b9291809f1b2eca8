import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type CacheStatus, cacheStatusOf } from '../cache/status.js';
import { type ClientIpResolver, clientIp } from '../proxy/client-ip.js';
import { exchangeOf } from '../proxy/exchange.js';

/**
 * One finished client exchange, as the `response` event reports it: everything an access-log line
 * needs. Durations are measured from the moment the balancer got the request (its head parsed).
 */
export interface ResponseInfo {
  /** Epoch milliseconds when the balancer got the request. */
  time: number;
  /** Request method. */
  method: string;
  /** The request target as the client sent it (Express/Connect's `originalUrl` when mounted), before any rewriting. */
  url: string;
  /** Status sent to the client; 0 when no response head was sent (the client left first, or the connection was cut). */
  status: number;
  /** Key of the target the last attempt went to (`http://10.0.0.4:3000`); undefined when none was (cache hit, refusal, no target). */
  target: string | undefined;
  /** Upstream attempts: 0 when no target was tried, 1, or more with retries. */
  attempts: number;
  /** Milliseconds to the response head: the upstream head's arrival for a proxied response, else when the balancer answered; NaN when no head was sent. */
  headMs: number;
  /** Milliseconds until the response ended (or the connection closed before it did). */
  durationMs: number;
  /** Bytes read from the client connection for this exchange, request head and body, as the socket counts them. */
  bytesIn: number;
  /** Bytes written to the client connection for this exchange, response head and body, as the socket counts them. */
  bytesOut: number;
  /** What the response cache did, when there is one and it saw the request. */
  cacheStatus: CacheStatus | undefined;
  /** Client address, through `trustProxy`. */
  clientIp: string;
  /** True when the response did not complete: the client left, or the connection was cut (an upstream failure after the head). */
  aborted: boolean;
  /** Why the last upstream attempt failed, if it did. */
  error: Error | undefined;
}

const kWatch = Symbol('proxy-balancer.responseWatch');
const kCounted = Symbol('proxy-balancer.bytesCounted');

type Watched = ServerResponse & { [kWatch]?: ResponseWatch };
/** Socket byte counts at the end of its previous exchange, so keep-alive exchanges each get their own share. */
type CountedSocket = Socket & { [kCounted]?: { read: number; written: number } };

/**
 * Emits the `response` event. The balancer calls `watch` for each request only while the event
 * has a listener, so without one nothing is allocated or listened to.
 */
export class ResponseEvents {
  readonly #resolver: ClientIpResolver | undefined;
  readonly #emit: (info: ResponseInfo, req: IncomingMessage, res: ServerResponse) => void;

  constructor(resolver: ClientIpResolver | undefined, emit: (info: ResponseInfo, req: IncomingMessage, res: ServerResponse) => void) {
    this.#resolver = resolver;
    this.#emit = emit;
  }

  /** Starts watching one request; the event follows its response's 'close'. */
  watch(req: IncomingMessage, res: ServerResponse): void {
    const original = (req as IncomingMessage & { originalUrl?: unknown }).originalUrl;
    (res as Watched)[kWatch] = new ResponseWatch(this, req, typeof original === 'string' ? original : (req.url ?? ''));
    // Read now: a socket destroyed before its address was asked for no longer knows it.
    void req.socket.remoteAddress;
    res.once('close', onResponseClose);
  }

  /** @internal */
  ended(watch: ResponseWatch, res: ServerResponse): void {
    const req = watch.req;
    const end = performance.now();
    const exchange = exchangeOf(res);
    const headersSent = res.headersSent;
    let headMs = Number.NaN;
    if (headersSent) headMs = exchange !== undefined && exchange.status !== 0 ? exchange.startedAt + exchange.latency - watch.start : end - watch.start;
    const socket = req.socket as CountedSocket;
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    let counted = socket[kCounted];
    const bytesIn = read - (counted?.read ?? 0);
    const bytesOut = written - (counted?.written ?? 0);
    if (counted === undefined) counted = socket[kCounted] = { read, written };
    counted.read = read;
    counted.written = written;
    const info: ResponseInfo = {
      time: watch.time,
      method: req.method ?? '',
      url: watch.url,
      status: headersSent ? res.statusCode : 0,
      target: exchange?.target.key,
      attempts: exchange?.attempt ?? 0,
      headMs,
      durationMs: end - watch.start,
      bytesIn,
      bytesOut,
      cacheStatus: cacheStatusOf(res),
      clientIp: this.#resolver === undefined ? clientIp(req) : this.#resolver.resolve(req),
      aborted: !res.writableFinished,
      error: exchange?.error,
    };
    this.#emit(info, req, res);
  }
}

class ResponseWatch {
  readonly start = performance.now();
  readonly time = Date.now();
  constructor(
    readonly owner: ResponseEvents,
    readonly req: IncomingMessage,
    readonly url: string,
  ) {}
}

function onResponseClose(this: Watched): void {
  const watch = this[kWatch];
  if (watch !== undefined) watch.owner.ended(watch, this);
}
