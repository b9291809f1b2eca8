import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { mayHaveBody } from '../../protect/reject.js';

const kBody = Symbol('proxy-balancer.body');

/**
 * A copy of a request body small enough to replay on another target. It listens alongside the
 * pipe to the first upstream; past `limit` bytes it lets go of what it kept and the request can
 * no longer be retried.
 */
export class RequestBody {
  #chunks: Buffer[] | undefined = [];
  #size = 0;
  #complete = false;
  #sink: PassThrough | undefined;
  readonly #limit: number;

  private constructor(limit: number) {
    this.#limit = limit;
  }

  /** Starts keeping the body of `req`, if it has one. */
  static record(req: IncomingMessage, limit: number): RequestBody | undefined {
    if (!mayHaveBody(req)) return undefined;
    const body = new RequestBody(limit);
    (req as IncomingMessage & { [kBody]?: RequestBody })[kBody] = body;
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    return body;
  }

  /** A body already in hand (re-serialised after a body parser). */
  static of(buffer: Buffer): RequestBody {
    const body = new RequestBody(Number.MAX_SAFE_INTEGER);
    body.push(buffer);
    body.end();
    return body;
  }

  /** Whether the whole body is (or will be) available for another attempt. */
  get replayable(): boolean {
    return this.#chunks !== undefined;
  }

  /** A stream of the body for another attempt: what was kept, then whatever is still arriving. */
  replay(): Readable {
    this.#sink?.destroy();
    const sink = new PassThrough();
    for (const chunk of this.#chunks ?? []) sink.write(chunk);
    if (this.#complete) sink.end();
    else this.#sink = sink;
    return sink;
  }

  push(chunk: Buffer): void {
    if (this.#chunks === undefined) return;
    this.#size += chunk.length;
    if (this.#size > this.#limit) {
      this.#chunks = undefined;
      this.#sink?.destroy();
      this.#sink = undefined;
      return;
    }
    this.#chunks.push(chunk);
    this.#sink?.write(chunk);
  }

  end(): void {
    this.#complete = true;
    this.#sink?.end();
  }
}

function onBodyData(this: IncomingMessage & { [kBody]?: RequestBody }, chunk: Buffer): void {
  this[kBody]?.push(chunk);
}

function onBodyEnd(this: IncomingMessage & { [kBody]?: RequestBody }): void {
  this[kBody]?.end();
}

/** The body of a bodiless request for a retry: the original stream has already ended. */
export function emptyBody(): Readable {
  return bodyStream(undefined);
}

/** A finished stream of `buffer`, to send in place of a request stream that is already consumed. */
export function bodyStream(buffer: Buffer | undefined): Readable {
  const stream = new PassThrough();
  stream.end(buffer);
  return stream;
}
