import type { OutgoingHttpHeaders } from 'node:http';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { isEventStream } from '../proxy/event-stream.js';
import { nestedObject } from '../validate.js';

/** On-the-fly compression of responses the upstream sent uncompressed. */
export interface CompressOptions {
  /** Encodings offered, in order of preference; default ['br', 'gzip']. */
  encodings?: ReadonlyArray<'br' | 'gzip'>;
  /** Smallest body compressed, bytes (when Content-Length says); default 1024. */
  minSize?: number;
  /** Which Content-Types are compressible; default text/*, JSON, JavaScript, XML, SVG. */
  types?: RegExp;
}

export interface ResolvedCompress {
  encodings: ReadonlyArray<'br' | 'gzip'>;
  minSize: number;
  types: RegExp;
}

const COMPRESSIBLE = /^(text\/|application\/(json|javascript|xml|[\w.+-]+\+(json|xml))|image\/svg\+xml)/i;

export function resolveCompress(input: unknown): ResolvedCompress | undefined {
  if (input === undefined || input === false) return undefined;
  const options = (
    input === true ? {} : nestedObject(input, 'compress', ['encodings', 'minSize', 'types'], { fn: 'responseCache', expected: 'true, false or an object' })
  ) as CompressOptions;
  const encodings = options.encodings ?? ['br', 'gzip'];
  if (!Array.isArray(encodings) || encodings.length === 0 || !encodings.every((e) => e === 'br' || e === 'gzip')) {
    throw new TypeError("responseCache: options.compress.encodings must list 'br' and/or 'gzip'");
  }
  const minSize = options.minSize ?? 1024;
  if (typeof minSize !== 'number' || !Number.isInteger(minSize) || minSize < 0)
    throw new TypeError('responseCache: options.compress.minSize must be a non-negative integer of bytes');
  if (options.types !== undefined && !(options.types instanceof RegExp)) throw new TypeError('responseCache: options.compress.types must be a RegExp');
  return { encodings, minSize, types: options.types ?? COMPRESSIBLE };
}

/**
 * The encoding among `offered` the client prefers by its Accept-Encoding q-values (ties: ours),
 * or undefined when it accepts none of them.
 */
export function preferredEncoding(accept: string | string[] | undefined, offered: readonly string[]): string | undefined {
  if (accept === undefined) return undefined;
  const text = Array.isArray(accept) ? accept.join(',') : accept;
  let best: string | undefined;
  let bestQ = 0;
  let wildcard = -1;
  const explicit = new Map<string, number>();
  for (const part of text.split(',')) {
    const [token = '', ...params] = part.split(';');
    const name = token.trim().toLowerCase();
    let q = 1;
    for (const param of params) {
      const [key, value] = param.split('=');
      if (key?.trim() === 'q') q = Number(value);
    }
    if (Number.isNaN(q)) continue;
    if (name === '*') wildcard = q;
    else explicit.set(name, q);
  }
  for (const encoding of offered) {
    const q = explicit.get(encoding) ?? Math.max(wildcard, 0);
    if (q > bestQ) {
      best = encoding;
      bestQ = q;
    }
  }
  return best;
}

/**
 * If this response should be compressed for this client, rewrites its head (Content-Encoding,
 * Vary, no Content-Length) and returns the compressor its body must go through.
 */
export function compressorFor(
  options: ResolvedCompress,
  accept: string | string[] | undefined,
  status: number,
  headers: OutgoingHttpHeaders,
  setHeader: (name: string, value: string) => void,
  removeHeader: (name: string) => void,
): Transform | undefined {
  if (status !== 200 || headers['content-encoding'] !== undefined) return undefined;
  const type = headers['content-type'];
  // A compressor holds its input until its buffer fills: events would arrive in batches, late.
  if (typeof type !== 'string' || !options.types.test(type) || isEventStream(type)) return undefined;
  const length = headers['content-length'];
  if (length !== undefined && Number(length) < options.minSize) return undefined;
  if (typeof headers['cache-control'] === 'string' && headers['cache-control'].includes('no-transform')) return undefined;
  const encoding = preferredEncoding(accept, options.encodings);
  const vary = headers.vary;
  const varies = typeof vary === 'string' && vary.toLowerCase().includes('accept-encoding');
  if (!varies) setHeader('vary', typeof vary === 'string' && vary !== '' ? `${vary}, Accept-Encoding` : 'Accept-Encoding');
  if (encoding === undefined) return undefined;
  setHeader('content-encoding', encoding);
  removeHeader('content-length');
  return encoding === 'br' ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }) : zlib.createGzip({ level: 6 });
}
