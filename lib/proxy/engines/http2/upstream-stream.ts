import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http';
import { type ClientHttp2Stream, constants, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Target } from '../../../target.js';
import { markUnprocessed, UpstreamProtocolError, UpstreamUnprocessedError } from '../../errors.js';
import { type Exchange, exchangeOf } from '../../exchange.js';
import type { EngineEvents } from '../engine.js';
import { asUpstreamResponse, flatHeaders, type UpstreamResponse } from './response.js';
import type { SessionPool, SessionWaiter } from './session-pool.js';
import type { UpstreamSession } from './session.js';

/** What a stream needs of its engine. */
export interface StreamHost {
  readonly events: EngineEvents;
}

type TimeoutCallback = (this: UpstreamStream) => void;
type WithUpstream = ClientHttp2Stream & { _proxyBalancerUpstream?: UpstreamStream };

/**
 * One request sent as an HTTP/2 stream: what the HTTP/1.1 engine's `ClientRequest` is to
 * `UpstreamEvents` and the exchange timers (headers a `proxyReq` hook may edit until the stream
 * opens, `setTimeout`, `destroy`, `writableFinished`, 'continue'/'information' events), and the
 * waiter for a session with room. The stream's response is relayed as the stream itself, given the
 * fields of an `IncomingMessage` (`response.ts`).
 */
export class UpstreamStream extends EventEmitter implements SessionWaiter {
  readonly #host: StreamHost;
  readonly #pool: SessionPool;
  readonly #target: Target;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  /** The attempt this stream belongs to: a later attempt's client response carries another. */
  readonly #exchange: Exchange | undefined;
  /** The request body to send, or undefined when the request has none. */
  readonly #body: Readable | undefined;
  readonly #headers: OutgoingHttpHeaders;
  stream: ClientHttp2Stream | undefined = undefined;
  session: UpstreamSession | undefined = undefined;
  headersSent = false;
  destroyed = false;
  /** The session's socket once the stream is open (tracing reads the peer address); none while waiting, which has its own timer. */
  get socket(): Socket | null {
    return this.session?.h2.socket ?? null;
  }
  #reported = false;
  #timeout = 0;
  #onTimeout: TimeoutCallback | undefined = undefined;
  #wait: NodeJS.Timeout | undefined = undefined;

  constructor(
    host: StreamHost,
    pool: SessionPool,
    target: Target,
    req: IncomingMessage,
    res: ServerResponse,
    headers: OutgoingHttpHeaders,
    body: Readable | undefined,
  ) {
    super();
    this.#host = host;
    this.#pool = pool;
    this.#target = target;
    this.#req = req;
    this.#res = res;
    this.#exchange = exchangeOf(res);
    this.#headers = headers;
    this.#body = body;
  }

  /** Reports the request (its `proxyReq` hook may still edit the headers), then opens the stream or waits for a session. */
  send(): void {
    this.#host.events.request(this as unknown as ClientRequest, this.#req, this.#res);
    if (this.destroyed) return;
    this.#pool.acquire(this);
    if (this.stream !== undefined || this.destroyed) return;
    // Waiting for a session: the body must not flow meanwhile (the retry recorder's 'data' listener
    // would start it), or what flowed would never reach the stream. The pipe resumes it.
    this.#body?.pause();
    if (this.#timeout > 0) this.#wait = setTimeout(waitedTooLong, this.#timeout, this);
  }

  get method(): string {
    return this.#headers[':method'] as string;
  }

  get path(): string {
    return this.#headers[':path'] as string;
  }

  get host(): string {
    return this.#headers[':authority'] as string;
  }

  /** The request body was sent in full (read by the status retry's drain). */
  get writableFinished(): boolean {
    return this.stream?.writableFinished ?? false;
  }

  setHeader(name: string, value: OutgoingHttpHeader): this {
    if (!this.headersSent) this.#headers[name.toLowerCase()] = value;
    return this;
  }

  getHeader(name: string): OutgoingHttpHeader | undefined {
    return this.#headers[name.toLowerCase()];
  }

  hasHeader(name: string): boolean {
    return this.#headers[name.toLowerCase()] !== undefined;
  }

  removeHeader(name: string): void {
    if (!this.headersSent) delete this.#headers[name.toLowerCase()];
  }

  getHeaders(): OutgoingHttpHeaders {
    return { ...this.#headers };
  }

  getHeaderNames(): string[] {
    return Object.keys(this.#headers);
  }

  /** HEADERS go out when the stream opens. */
  flushHeaders(): void {}

  /** Calls `callback` after `ms` of silence: waiting for a session, then on the stream. */
  setTimeout(ms: number, callback: TimeoutCallback): this {
    this.#timeout = ms;
    this.#onTimeout = callback;
    this.stream?.setTimeout(ms, onStreamIdle);
    return this;
  }

  /** Gives up the request: the stream is reset with CANCEL at once (or never opens); `err` is reported as the attempt's failure. */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.#stopWaiting();
    const stream = this.stream;
    if (stream === undefined) {
      this.#pool.cancel(this);
      this.#body?.resume();
    } else if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
    if (err !== undefined) process.nextTick(reportFailure, this, err);
    return this;
  }

  sessionReady(session: UpstreamSession): void {
    this.#stopWaiting();
    if (this.destroyed) return;
    const body = this.#body;
    let stream: WithUpstream;
    try {
      stream = session.request(this.#headers, body === undefined);
    } catch (err) {
      // A session closing meanwhile (the stream never went out), or fields Node will not send (a hook's `Connection`).
      this.destroyed = true;
      const closing = session.h2.closed || session.h2.destroyed;
      const failure = closing
        ? new UpstreamUnprocessedError('ERR_HTTP2_GOAWAY_UNPROCESSED', 'upstream session closed before the stream was sent', err as Error)
        : (err as Error);
      process.nextTick(reportFailure, this, failure);
      return;
    }
    this.stream = stream;
    this.session = session;
    this.headersSent = true;
    stream._proxyBalancerUpstream = this;
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    stream.on('response', onStreamResponse);
    stream.on('headers', onStreamInformation);
    stream.on('trailers', onStreamTrailers);
    stream.on('end', onStreamEnd);
    if (this.#headers.expect !== undefined) stream.once('continue', onStreamContinue);
    if (this.#timeout > 0) stream.setTimeout(this.#timeout, onStreamIdle);
    body?.pipe(stream);
  }

  sessionFailed(err: Error): void {
    this.#stopWaiting();
    if (this.destroyed) return;
    this.destroyed = true;
    // Paused while waiting: the retry recorder must still read the body to its end for a replay.
    this.#body?.resume();
    reportFailure(this, markUnprocessed(err));
  }

  /** Reports this attempt's failure once, unless a later attempt has taken over the exchange. */
  report(err: Error): void {
    if (this.#reported) return;
    this.#reported = true;
    if (exchangeOf(this.#res) !== this.#exchange) return;
    this.#host.events.error(err, this.#req, this.#res, this.#target);
  }

  /** The response head arrived: relayed unless the attempt is over. */
  responded(stream: ClientHttp2Stream, headers: IncomingHttpHeaders, headEnded: boolean): void {
    if (this.destroyed || exchangeOf(this.#res) !== this.#exchange) {
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      return;
    }
    const response = asUpstreamResponse(stream, headers, headEnded);
    this.#host.events.response(response as unknown as IncomingMessage, this.#req, this.#res);
  }

  timedOut(): void {
    this.#onTimeout?.call(this);
  }

  #stopWaiting(): void {
    if (this.#wait === undefined) return;
    clearTimeout(this.#wait);
    this.#wait = undefined;
  }
}

/**
 * Why a stream failed, in the terms the retry decision needs: a stream the upstream provably did
 * not process (refused, above a GOAWAY's last-stream-id, or never sent) is `unprocessed`.
 */
function classify(upstream: UpstreamStream, stream: ClientHttp2Stream, err: Error | undefined): Error {
  // Before the REFUSED_STREAM check: the streams a GOAWAY left out are closed with that code too.
  const id = stream.id;
  if (id === undefined || id > (upstream.session?.lastProcessed ?? Number.POSITIVE_INFINITY)) {
    return new UpstreamUnprocessedError('ERR_HTTP2_GOAWAY_UNPROCESSED', 'upstream session closed without processing the stream', err);
  }
  if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) return new UpstreamUnprocessedError('ERR_HTTP2_REFUSED_STREAM', 'upstream refused the stream', err);
  return err ?? new UpstreamProtocolError('upstream stream closed before its response was complete');
}

function reportFailure(upstream: UpstreamStream, err: Error): void {
  upstream.report(err);
}

function waitedTooLong(upstream: UpstreamStream): void {
  upstream.timedOut();
}

function onStreamIdle(this: WithUpstream): void {
  this._proxyBalancerUpstream?.timedOut();
}

function onStreamError(this: WithUpstream, err: Error): void {
  const upstream = this._proxyBalancerUpstream;
  if (upstream !== undefined && !upstream.destroyed) upstream.report(classify(upstream, this, err));
}

function onStreamClose(this: WithUpstream): void {
  const upstream = this._proxyBalancerUpstream;
  if (upstream === undefined) return;
  upstream.session?.streamClosed();
  // Reset or closed before the response was complete, with no error: never passed off as complete.
  if (!upstream.destroyed && (this as unknown as UpstreamResponse).complete !== true) upstream.report(classify(upstream, this, undefined));
}

function onStreamResponse(this: WithUpstream, headers: IncomingHttpHeaders, flags: number): void {
  this._proxyBalancerUpstream?.responded(this, headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
}

// 1xx other than 100 (103 Early Hints, 102 Processing) reach the client as they left the target.
function onStreamInformation(this: WithUpstream, headers: IncomingHttpHeaders): void {
  const status = Number(headers[':status']);
  if (!(status >= 101 && status < 200)) return;
  this._proxyBalancerUpstream?.emit('information', { statusCode: status, statusMessage: '', headers, rawHeaders: flatHeaders(headers) });
}

function onStreamContinue(this: WithUpstream): void {
  this._proxyBalancerUpstream?.emit('continue');
}

function onStreamTrailers(this: WithUpstream, trailers: IncomingHttpHeaders): void {
  (this as unknown as UpstreamResponse).rawTrailers = flatHeaders(trailers);
}

// Node ends the readable side of a stream whose session died (the connection cut) as if END_STREAM
// had come, but has destroyed it by then; a stream that really ended is destroyed only after 'end'.
// Reported before the relay's own 'end' listener ends the client response.
function onStreamEnd(this: WithUpstream): void {
  if (!this.destroyed) {
    (this as unknown as UpstreamResponse).complete = true;
    return;
  }
  const upstream = this._proxyBalancerUpstream;
  if (upstream !== undefined && !upstream.destroyed) upstream.report(new UpstreamProtocolError('upstream connection closed before the response was complete'));
}
