import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import { cutResponse } from '../proxy/errors.js';

/** What happens to a response body once its head is known. */
export interface CaptureMode {
  /** Relay it to the client. */
  forward: boolean;
  /** Keep a copy (up to the entry size limit) for the cache. */
  keep: boolean;
}

export const STORE: CaptureMode = { forward: true, keep: true };
export const PASS: CaptureMode = { forward: true, keep: false };
export const SWALLOW: CaptureMode = { forward: false, keep: false };
export const KEEP_ONLY: CaptureMode = { forward: false, keep: true };

/** The cache's side of a capture. */
export interface CaptureOwner {
  /** The response head is committed: choose what to do with the body (and set headers such as Cache-Status). */
  decide(capture: Capture): CaptureMode;
  /** The response ended; `body` is the kept copy, or undefined if nothing was kept or it grew too large. */
  complete(capture: Capture, body: Buffer | undefined): void;
}

const kCapture = Symbol('proxy-balancer.capture');
type Captured = ServerResponse & { [kCapture]?: Capture };
type WriteHead = ServerResponse['writeHead'];
type Write = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;
type End = (chunk?: unknown, encoding?: unknown, callback?: unknown) => ServerResponse;

/**
 * Sits between whatever produces a response (the proxy, or any handler) and the client: it sees the
 * head before it is sent, can keep a copy of the body, or hold the whole response back so the
 * cache can answer instead (a 304 that refreshed an entry, a 5xx replaced by a stale entry).
 * It works on the response object itself, so the producer needs to know nothing about it.
 */
export class Capture {
  mode: CaptureMode | undefined;
  readonly res: ServerResponse;
  readonly req: IncomingMessage;
  readonly #owner: CaptureOwner;
  readonly #limit: number;
  #chunks: Buffer[] | undefined = [];
  #size = 0;
  #finished = false;
  /** A compressor the body goes through on its way to the client (and the cache). */
  #transform: Transform | undefined;
  readonly #writeHead: WriteHead;
  readonly #write: Write;
  readonly #end: End;

  constructor(owner: CaptureOwner, req: IncomingMessage, res: ServerResponse, limit: number) {
    this.#owner = owner;
    this.req = req;
    this.res = res;
    this.#limit = limit;
    this.#writeHead = res.writeHead;
    this.#write = res.write as Write;
    this.#end = res.end as End;
    (res as Captured)[kCapture] = this;
    res.writeHead = captureWriteHead as WriteHead;
    res.write = captureWrite as ServerResponse['write'];
    res.end = captureEnd as ServerResponse['end'];
    res.on('close', onCaptureClose);
  }

  /** Sends the body through `transform` (a compressor): its output is what the client gets and the cache keeps. */
  transformWith(transform: Transform): void {
    this.#transform = transform;
    (transform as Transform & { [kCapture]?: Capture })[kCapture] = this;
    transform.on('data', onTransformed);
    transform.on('end', onTransformEnd);
    transform.on('error', onTransformError);
    // Backpressure both ways: a producer told to wait (write() returned false) hears 'drain' on the
    // response once the compressor has room; a compressor paused by a full client socket resumes on
    // the socket's 'drain'.
    transform.on('drain', onTransformDrain);
    this.res.on('drain', onResponseDrain);
  }

  get transform(): Transform | undefined {
    return this.#transform;
  }

  /** Gives the response object back its own methods (to answer it directly, or once nothing more is to be seen). */
  release(): void {
    const res = this.res;
    res.writeHead = this.#writeHead;
    res.write = this.#write as ServerResponse['write'];
    res.end = this.#end as ServerResponse['end'];
  }

  commit(): CaptureMode {
    if (this.mode !== undefined) return this.mode;
    const mode = this.#owner.decide(this);
    this.mode = mode;
    const declared = Number(this.res.getHeader('content-length'));
    if (!mode.keep || declared > this.#limit) this.#chunks = undefined;
    if (mode.forward && this.#chunks === undefined && this.#transform === undefined) this.#stopWatching();
    return mode;
  }

  dropKept(): void {
    if (!this.#finished) this.#chunks = undefined;
  }

  keep(chunk: unknown, encoding: unknown): void {
    if (this.#chunks === undefined || chunk === undefined || chunk === null) return;
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, (encoding as BufferEncoding) ?? 'utf8');
    this.#size += buffer.length;
    if (this.#size > this.#limit) {
      this.#chunks = undefined;
      if (this.mode?.forward && this.#transform === undefined) this.#stopWatching();
      return;
    }
    this.#chunks.push(buffer);
  }

  /** Reports the outcome to the owner, once: at the end, when nothing more is kept, or when the response closed early. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const chunks = this.#chunks;
    this.#chunks = undefined;
    this.#owner.complete(this, chunks === undefined ? undefined : Buffer.concat(chunks, this.#size));
  }

  // Nothing more to keep or hold back: the rest goes straight through, and the owner hears now.
  #stopWatching(): void {
    this.release();
    this.#chunks = undefined;
    this.finish();
  }

  writeHeadThrough(status: number): void {
    this.#writeHead.call(this.res, status);
  }

  writeThrough(chunk: unknown, encoding: unknown, callback: unknown): boolean {
    return this.#write.call(this.res, chunk, encoding, callback);
  }

  endThrough(chunk: unknown, encoding: unknown, callback: unknown): ServerResponse {
    return this.#end.call(this.res, chunk, encoding, callback);
  }
}

function applyHeaders(res: ServerResponse, headers: OutgoingHttpHeaders | readonly unknown[]): void {
  if (Array.isArray(headers)) {
    // Raw form: [name, value, name, value...] or [[name, value]...].
    const list = Array.isArray(headers[0]) ? (headers as [string, string][]) : pairs(headers as string[]);
    for (const [name, value] of list) {
      const prior = res.getHeader(name);
      res.setHeader(name, prior === undefined ? value : ([] as string[]).concat(prior as string, value));
    }
    return;
  }
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && value !== null) res.setHeader(name, value as string | number | readonly string[]);
}

/** [name, value, name, value...] as [name, value] pairs. */
export function pairs(flat: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
  return pairs;
}

function captureWriteHead(this: Captured, status: number, reason?: unknown, headers?: unknown): ServerResponse {
  const capture = this[kCapture]!;
  if (typeof reason === 'string') this.statusMessage = reason;
  else headers = reason;
  if (headers !== undefined && headers !== null) applyHeaders(this, headers as OutgoingHttpHeaders);
  this.statusCode = status;
  if (!capture.commit().forward) return this;
  capture.writeHeadThrough(status);
  return this;
}

function captureWrite(this: Captured, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
  const capture = this[kCapture]!;
  const mode = capture.commit();
  const transform = capture.transform;
  if (transform !== undefined) {
    // The compressor's answer is the producer's: false makes it wait for the 'drain' emitted on the response when the compressor has room.
    return transform.write(
      chunk,
      (typeof encoding === 'string' ? encoding : 'utf8') as BufferEncoding,
      typeof encoding === 'function' ? (encoding as () => void) : (callback as () => void),
    );
  }
  capture.keep(chunk, typeof encoding === 'function' ? undefined : encoding);
  if (mode.forward) return capture.writeThrough(chunk, encoding, callback);
  const done = typeof encoding === 'function' ? encoding : callback;
  if (typeof done === 'function') queueMicrotask(done as () => void);
  return true;
}

function captureEnd(this: Captured, chunk?: unknown, encoding?: unknown, callback?: unknown): ServerResponse {
  const capture = this[kCapture]!;
  if (typeof chunk === 'function') [chunk, callback] = [undefined, chunk];
  else if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
  const mode = capture.commit();
  const transform = capture.transform;
  if (transform !== undefined) {
    if (chunk !== undefined && chunk !== null) transform.write(chunk, (encoding as BufferEncoding) ?? 'utf8');
    transform.end();
    if (typeof callback === 'function') this.once('finish', callback as () => void);
    return this;
  }
  capture.keep(chunk, encoding);
  if (mode.forward) capture.endThrough(chunk, encoding, callback);
  else if (typeof callback === 'function') queueMicrotask(callback as () => void);
  capture.finish();
  return this;
}

// A response destroyed before its end (client gone, upstream cut) is reported as nothing kept.
function onCaptureClose(this: Captured): void {
  const capture = this[kCapture];
  if (capture === undefined) return;
  if (capture.mode === undefined || !capture.mode.forward) capture.release();
  capture.dropKept();
  capture.finish();
}

function onTransformed(this: Transform & { [kCapture]?: Capture }, chunk: Buffer): void {
  const capture = this[kCapture]!;
  capture.keep(chunk, undefined);
  // A client that stops reading stops the compressor, whose input then fills and stops the producer.
  if (capture.mode?.forward && !capture.writeThrough(chunk, undefined, undefined)) this.pause();
}

function onTransformDrain(this: Transform & { [kCapture]?: Capture }): void {
  this[kCapture]!.res.emit('drain');
}

function onResponseDrain(this: Captured): void {
  // The 'drain' emitted above for the producer, while the client socket is still full, is not a reason to resume.
  if (this.writableNeedDrain) return;
  const transform = this[kCapture]?.transform;
  if (transform?.isPaused()) transform.resume();
}

function onTransformEnd(this: Transform & { [kCapture]?: Capture }): void {
  const capture = this[kCapture]!;
  if (capture.mode?.forward) capture.endThrough(undefined, undefined, undefined);
  capture.finish();
}

function onTransformError(this: Transform & { [kCapture]?: Capture }): void {
  const capture = this[kCapture]!;
  capture.dropKept();
  cutResponse(capture.res);
}
