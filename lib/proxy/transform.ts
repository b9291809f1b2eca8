import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import zlib from 'node:zlib';
import { logProxy } from '../observe/log.js';
import { UpstreamProtocolError } from './errors.js';
import { type Exchange, exchangeOf } from './exchange.js';
import { writeHead } from './write-head.js';
import { knownKeys } from '../validate.js';
import { clientGone } from './client-gone.js';

/** What a body transform is told about the response it rewrites. */
export interface TransformContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** The upstream response (head only: its body is the `body` argument, decoded). */
  proxyRes: IncomingMessage;
  /** Upstream status code. */
  status: number;
  /** Media type of the body, lower case, without parameters ('text/html'). */
  contentType: string;
}

/** Rewrites a whole decoded response body; what it returns is what the client gets (re-encoded). */
export type TransformBody = (body: Buffer, context: TransformContext) => Buffer | string | Promise<Buffer | string>;

/** http-proxy-middleware's `responseInterceptor`, bounded: rewrites the bodies of matching responses. */
export interface TransformResponseOptions {
  /** Returns the new body. A throw or rejection answers 502: a filter that fails never lets the original through. */
  transform: TransformBody;
  /** Media types whose bodies are transformed: exact ('application/json') or a whole type ('text/*'); default ['text/html']. */
  types?: readonly string[];
  /** Largest decoded body buffered for the transform, bytes; a larger response passes through unchanged (counted in stats). Default 1048576 (1 MiB). */
  maxBytes?: number;
}

export interface TransformStats {
  /** Responses whose body was rewritten. */
  transformed: number;
  /** Matching responses larger than `maxBytes`, relayed unchanged. */
  tooLarge: number;
  /** Responses answered 502 because decoding or the transform failed. */
  failed: number;
}

const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  br: () => zlib.createBrotliDecompress(),
  deflate: () => zlib.createInflate(),
};

const ENCODERS: Record<string, (body: Buffer) => Buffer> = {
  gzip: (body) => zlib.gzipSync(body),
  'x-gzip': (body) => zlib.gzipSync(body),
  br: (body) => zlib.brotliCompressSync(body),
  deflate: (body) => zlib.deflateSync(body),
};

// Fields that describe the exact upstream bytes and would be false of the rewritten ones.
const STALE_FIELDS = new Set(['content-length', 'content-md5', 'digest', 'content-digest', 'repr-digest', 'etag']);

const NO_BODY_STATUSES = new Set([204, 205, 304]);

/** The resolved `transformResponse` option: which responses it takes, and its counters. */
export class ResponseTransformer {
  readonly stats: TransformStats = { transformed: 0, tooLarge: 0, failed: 0 };
  readonly #transform: TransformBody;
  readonly #exact: ReadonlySet<string>;
  readonly #wholeTypes: readonly string[];
  readonly maxBytes: number;

  constructor(options: TransformResponseOptions | TransformBody) {
    const spec = typeof options === 'function' ? { transform: options } : options;
    if (typeof spec !== 'object' || spec === null || typeof spec.transform !== 'function') {
      throw new TypeError(`loadBalance: options.transformResponse must be a function or { transform, types?, maxBytes? }, got ${typeof options}`);
    }
    knownKeys(spec as unknown as Record<string, unknown>, 'transformResponse', ['transform', 'types', 'maxBytes']);
    const types = spec.types ?? ['text/html'];
    if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === 'string' && t.includes('/'))) {
      throw new TypeError(
        `loadBalance: options.transformResponse.types must be a non-empty array of media types ('text/html', 'text/*'), got ${String(types)}`,
      );
    }
    const maxBytes = spec.maxBytes ?? 1024 * 1024;
    if (typeof maxBytes !== 'number' || !Number.isInteger(maxBytes) || maxBytes <= 0) {
      throw new TypeError(`loadBalance: options.transformResponse.maxBytes must be a positive integer of bytes, got ${String(maxBytes)}`);
    }
    this.#transform = spec.transform;
    this.maxBytes = maxBytes;
    const lower = types.map((t) => t.toLowerCase());
    this.#exact = new Set(lower.filter((t) => !t.endsWith('/*')));
    this.#wholeTypes = lower.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1));
  }

  /** The media type to transform this response as, or undefined to relay it as it is. */
  takes(proxyRes: IncomingMessage, req: IncomingMessage): string | undefined {
    const status = proxyRes.statusCode ?? 0;
    if (req.method === 'HEAD' || status < 200 || NO_BODY_STATUSES.has(status)) return undefined;
    const type = mediaType(proxyRes.headers['content-type']);
    if (type === undefined) return undefined;
    if (!this.#exact.has(type) && !this.#wholeTypes.some((prefix) => type.startsWith(prefix))) return undefined;
    // Its body never ends, so a transform would never run: events stream through untouched ('text/*' matches them).
    if (type === 'text/event-stream') return undefined;
    const encoding = proxyRes.headers['content-encoding']?.trim().toLowerCase() ?? 'identity';
    if (encoding !== 'identity' && DECODERS[encoding] === undefined) return undefined;
    const declared = Number(proxyRes.headers['content-length']);
    if (declared > this.maxBytes && encoding === 'identity') {
      this.stats.tooLarge++;
      return undefined;
    }
    return type;
  }

  run(body: Buffer, context: TransformContext): Promise<Buffer | string> {
    return Promise.resolve().then(() => this.#transform(body, context));
  }
}

/**
 * Holds a matching response back: its body is collected (decoded) up to `maxBytes`, transformed,
 * re-encoded as it came, and sent with a correct Content-Length (and a weakened ETag). Past the
 * limit the head and everything kept so far are relayed unchanged, and the rest streams through.
 */
export class BufferedRelay {
  readonly #exchange: Exchange;
  readonly #transformer: ResponseTransformer;
  readonly #proxyRes: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #status: number;
  readonly #reason: string | undefined;
  readonly #headers: string[];
  readonly #contentType: string;
  readonly #encoding: string;
  readonly #decoder: Transform | undefined;
  #raw: Buffer[] = [];
  #decoded: Buffer[] = [];
  #decodedSize = 0;
  #passedThrough = false;

  constructor(
    exchange: Exchange,
    transformer: ResponseTransformer,
    res: ServerResponse,
    head: { status: number; reason: string | undefined; headers: string[]; contentType: string },
  ) {
    this.#exchange = exchange;
    this.#transformer = transformer;
    this.#proxyRes = exchange.proxyRes!;
    this.#res = res;
    this.#status = head.status;
    this.#reason = head.reason;
    this.#headers = head.headers;
    this.#contentType = head.contentType;
    this.#encoding = this.#proxyRes.headers['content-encoding']?.trim().toLowerCase() ?? 'identity';
    const decoder = DECODERS[this.#encoding]?.();
    this.#decoder = decoder;
    const proxyRes = this.#proxyRes;
    proxyRes.on('data', this.#onRaw);
    if (decoder === undefined) {
      proxyRes.on('data', this.#onDecoded);
      proxyRes.on('end', this.#onDecodedEnd);
      return;
    }
    decoder.on('data', this.#onDecoded);
    decoder.on('end', this.#onDecodedEnd);
    decoder.on('error', this.#onDecodeError);
    proxyRes.pipe(decoder);
  }

  readonly #onRaw = (chunk: Buffer): void => {
    this.#raw.push(chunk);
  };

  readonly #onDecoded = (chunk: Buffer): void => {
    if (this.#passedThrough) return;
    this.#decodedSize += chunk.length;
    if (this.#decodedSize > this.#transformer.maxBytes) {
      this.#transformer.stats.tooLarge++;
      this.#passThrough();
      return;
    }
    this.#decoded.push(chunk);
  };

  readonly #onDecodedEnd = (): void => {
    if (this.#passedThrough || !this.#proxyRes.complete) return;
    const context: TransformContext = {
      req: this.#exchange.req,
      res: this.#res,
      proxyRes: this.#proxyRes,
      status: this.#status,
      contentType: this.#contentType,
    };
    const decoded = Buffer.concat(this.#decoded, this.#decodedSize);
    this.#decoded = [];
    this.#raw = [];
    this.#transformer.run(decoded, context).then(this.#send, this.#onTransformError);
  };

  readonly #send = (result: Buffer | string): void => {
    if (clientGone(this.#res) || this.#res.headersSent || exchangeOf(this.#res) !== this.#exchange) return;
    let body: Buffer;
    try {
      const plain = typeof result === 'string' ? Buffer.from(result) : result;
      if (!Buffer.isBuffer(plain)) throw new TypeError('transformResponse must return a Buffer or a string');
      body = this.#encoding === 'identity' ? plain : ENCODERS[this.#encoding]!(plain);
    } catch (err) {
      this.#onTransformError(err);
      return;
    }
    const headers: string[] = [];
    const source = this.#headers;
    for (let i = 0; i < source.length; i += 2) {
      const lower = source[i]!.toLowerCase();
      if (lower === 'etag') headers.push(source[i]!, weakened(source[i + 1]!));
      else if (!STALE_FIELDS.has(lower)) headers.push(source[i]!, source[i + 1]!);
    }
    headers.push('content-length', String(body.length));
    this.#transformer.stats.transformed++;
    try {
      writeHead(this.#res, this.#status, this.#reason, headers);
    } catch (err) {
      this.#onTransformError(err);
      return;
    }
    this.#res.end(body);
  };

  readonly #onTransformError = (err: unknown): void => {
    this.#transformer.stats.failed++;
    if (logProxy.enabled) logProxy('transformResponse failed for %s %s: %s', this.#exchange.req.method, this.#exchange.req.url, (err as Error)?.message);
    const failure = new UpstreamProtocolError('response transform failed', err instanceof Error ? err : undefined);
    if (this.#exchange.failed(failure)) this.#exchange.owner.answerFailure(this.#exchange, failure, 502);
  };

  readonly #onDecodeError = (err: Error): void => {
    this.#proxyRes.unpipe(this.#decoder!);
    this.#proxyRes.destroy();
    this.#onTransformError(err);
  };

  // Too large to hold: what was kept so far goes out as it came, then the rest streams through.
  #passThrough(): void {
    this.#passedThrough = true;
    const proxyRes = this.#proxyRes;
    proxyRes.off('data', this.#onRaw);
    if (this.#decoder !== undefined) {
      proxyRes.unpipe(this.#decoder);
      this.#decoder.destroy();
    } else {
      proxyRes.off('data', this.#onDecoded);
    }
    this.#decoded = [];
    const res = this.#res;
    try {
      writeHead(res, this.#status, this.#reason, this.#headers);
    } catch (err) {
      this.#onTransformError(err);
      return;
    }
    for (const chunk of this.#raw) res.write(chunk);
    this.#raw = [];
    proxyRes.pipe(res);
  }
}

function mediaType(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const semicolon = header.indexOf(';');
  return (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase();
}

function weakened(etag: string): string {
  return etag.startsWith('W/') ? etag : `W/${etag}`;
}
