import { FRAMINGS, h1Request, METHODS, smuggleBody } from '../abuse/framing.js';
import { chunked, parseResponses, type Message } from '../upstream/http1.js';
import { Random } from './prng.js';

/** How the backend ends its side after the response bytes. */
export type Finish = 'keep' | 'end' | 'reset' | 'hang';

/** One fuzz case: what the client sends, and exactly what the backend writes back. */
export interface FuzzCase {
  seed: number;
  index: number;
  /** Unique in the run; also the URL path `/c/<id>`, the `x-case` field and the body's tag. */
  id: string;
  method: string;
  /** Request bytes in parts (head, body pieces), as the client sends them. */
  request: Buffer[];
  /** The request was mutated (it may not reach the backend as written, or at all). */
  requestMutations: string[];
  /** Backend writes, each after `delayMs`. */
  writes: Array<{ bytes: Buffer; delayMs: number }>;
  finish: Finish;
  /** Names of the response mutations applied (empty: only framing-preserving changes). */
  mutations: string[];
  /** Send the same request again once the first completes (a cache hit must be a true copy). */
  repeat: boolean;
  /**
   * A request-framing case (the framing matrix's shapes: method × framing, TE obfuscations, CL
   * lists, header floods): the backend must see at most one request for it, carrying `body`, or the
   * client a 4xx with nothing forwarded.
   */
  framing: { name: string; body: Buffer } | undefined;
}

/** What a conforming reader makes of the backend's bytes, and whether a relay must deliver it whole. */
export interface Reference {
  /** The final response, when the bytes hold a complete one. */
  final: Message | undefined;
  /**
   * The bytes are exactly one well-formed response (plus 1xx), nothing more, ended cleanly, within
   * Node's default limits: the client must get it, complete and identical.
   */
  strict: boolean;
  why: string;
}

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  203: 'Non-Authoritative Information',
  204: 'No Content',
  301: 'Moved Permanently',
  304: 'Not Modified',
  404: 'Not Found',
  410: 'Gone',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const RESPONSE_MUTATIONS = [
  'flip',
  'truncate',
  'extra',
  'duplicate-field',
  'remove-field',
  'bad-reason',
  'bad-chunk',
  'wrong-length',
  'length-and-chunked',
  'status-101',
  'huge-field',
  'many-fields',
  'garbage',
  'hang',
  'bare-lf',
  'obs-fold',
  'nul-in-field',
  'reset',
  'second-response',
] as const;

const REQUEST_MUTATIONS = ['flip', 'length-and-chunked', 'bad-length', 'huge-field', 'garbage-field', 'duplicate-host', 'short-body'] as const;

/** Builds case `index` of run `seed`: the same pair always gives the same case. */
export function makeCase(seed: number, index: number): FuzzCase {
  const rng = new Random(seed, index);
  const id = `${seed.toString(36)}-${index.toString(36)}`;
  const method = rng.weighted([
    ['GET', 70],
    ['HEAD', 8],
    ['POST', 8],
    ['PUT', 6],
    ['DELETE', 4],
    ['OPTIONS', 4],
  ] as const);
  const status = rng.weighted([
    [200, 60],
    [201, 4],
    [203, 2],
    [204, 5],
    [301, 3],
    [304, 5],
    [404, 8],
    [410, 2],
    [500, 6],
    [503, 5],
  ] as const);
  const bodiless = method === 'HEAD' || status === 204 || status === 304;
  const body = bodiless ? Buffer.alloc(0) : makeBody(rng, id);
  const framing = bodiless
    ? rng.pick(['length', 'none', 'chunked'] as const)
    : rng.weighted([
        ['length', 50],
        ['chunked', 35],
        ['close', 15],
      ] as const);
  const version = framing === 'close' && rng.chance(0.5) ? '1.0' : '1.1';

  const fields: Array<[string, string]> = [
    [casing(rng, 'x-case'), id],
    [casing(rng, 'x-tag'), rng.text(rng.int(1, 24)).replace(/^ +| +$/g, '') || 't'],
    [casing(rng, 'content-type'), rng.pick(['text/plain', 'application/json', 'application/octet-stream', 'text/html; charset=utf-8'])],
  ];
  if (rng.chance(0.5)) fields.push([casing(rng, 'cache-control'), rng.pick(['max-age=60', 'public, max-age=30', 'no-store', 'private', 's-maxage=60'])]);
  if (rng.chance(0.3)) fields.push([casing(rng, 'etag'), `"${rng.int(0, 1e6)}"`]);
  if (status === 301) fields.push(['Location', '/elsewhere']);
  if (rng.chance(0.1)) fields.push(['Set-Cookie', `s=${rng.int(0, 1e6)}; Path=/`]);
  if (rng.chance(0.1)) fields.push(['Vary', rng.pick(['Accept', 'Accept-Encoding', 'User-Agent'])]);
  let head = `HTTP/${version} ${status} ${REASONS[status]}\r\n`;
  for (const [name, value] of rng.shuffle(fields)) head += `${name}: ${value}\r\n`;
  let payload: Buffer = Buffer.alloc(0);
  let trailers = '';
  if (framing === 'length') head += `${casing(rng, 'content-length')}: ${body.length}\r\n`;
  if (framing === 'chunked') {
    head += `${casing(rng, 'transfer-encoding')}: chunked\r\n`;
    if (rng.chance(0.2)) trailers = 'X-Trailer: done\r\n';
  }
  if (framing === 'close' && version === '1.1') head += 'Connection: close\r\n';
  head += '\r\n';
  if (!bodiless || method !== 'HEAD') {
    if (framing === 'chunked') payload = bodiless ? Buffer.from('0\r\n\r\n') : chunked(body, chunkSizes(rng, body.length), trailers);
    else if (framing !== 'none') payload = body;
  }

  // Interim responses in front: framing-preserving.
  let interim = '';
  if (rng.chance(0.12)) {
    interim = rng.pick([
      'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n',
      'HTTP/1.1 102 Processing\r\n\r\n',
      'HTTP/1.1 103 Early Hints\r\nLink: </a.js>; rel=preload\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b.js>; rel=preload\r\n\r\n',
    ]);
  }

  let bytes: Buffer = Buffer.concat([Buffer.from(interim + head, 'latin1'), payload]);
  let finish: Finish = framing === 'close' ? 'end' : rng.chance(0.2) ? 'end' : 'keep';
  const mutations: string[] = [];
  if (rng.chance(0.45)) {
    const count = rng.weighted([
      [1, 70],
      [2, 22],
      [3, 8],
    ] as const);
    for (let i = 0; i < count; i++) {
      const mutation = rng.pick(RESPONSE_MUTATIONS);
      mutations.push(mutation);
      ({ bytes, finish } = mutateResponse(rng, mutation, bytes, finish, interim.length));
    }
  }

  const writes = split(rng, bytes);
  const path = `/c/${id}`;
  const requestBody =
    method === 'POST' || method === 'PUT'
      ? rng.bytes(
          rng.weighted([
            [0, 20],
            [rng.int(1, 2000), 60],
            [rng.int(2000, 100_000), 20],
          ] as const),
        )
      : Buffer.alloc(0);
  let requestHead = `${method} ${path} HTTP/1.1\r\nHost: fuzz.local\r\n`;
  if (status === 304) requestHead += 'If-None-Match: "1"\r\n';
  if (method === 'POST' || method === 'PUT') requestHead += `Content-Type: application/octet-stream\r\nContent-Length: ${requestBody.length}\r\n`;
  if (rng.chance(0.1)) requestHead += 'Connection: close\r\n';
  requestHead += '\r\n';
  let request = [Buffer.from(requestHead, 'latin1'), ...(requestBody.length > 0 ? split(rng, requestBody).map((w) => w.bytes) : [])];
  const requestMutations: string[] = [];
  if (rng.chance(0.08)) {
    const mutation = rng.pick(REQUEST_MUTATIONS);
    requestMutations.push(mutation);
    request = mutateRequest(rng, mutation, request);
  }
  const repeat = method === 'GET' && rng.chance(0.15);
  // Request framing, from a stream of its own (the cases above stay as they were for a seed): the
  // request is replaced by one of the framing matrix's, with a body that reads as a second request
  // (naming this case) if it reaches the backend unframed.
  const frng = new Random(seed, index, 0xf7a);
  if (requestMutations.length === 0 && frng.chance(0.1)) {
    // The response was made for `method`: HEAD stays HEAD, and nothing else becomes HEAD.
    const framedMethod = method === 'HEAD' ? 'HEAD' : frng.pick(METHODS.filter((m) => m !== 'HEAD'));
    const framing = frng.pick(FRAMINGS);
    const body = Buffer.concat([
      smuggleBody(id),
      frng.bytes(
        frng.weighted([
          [0, 30],
          [frng.int(1, 2000), 60],
          [frng.int(2000, 40_000), 10],
        ] as const),
      ),
    ]);
    const bytes = h1Request(framedMethod, path, framing, body);
    return {
      seed,
      index,
      id,
      method: framedMethod,
      request: frng.chance(0.5) ? [bytes] : split(frng, bytes).map((w) => w.bytes),
      requestMutations: [`framing: ${framing.name}`],
      writes,
      finish,
      mutations,
      repeat: false,
      framing: { name: framing.name, body: framing.body ? body : Buffer.alloc(0) },
    };
  }
  return { seed, index, id, method, request, requestMutations, writes, finish, mutations, repeat, framing: undefined };
}

function makeBody(rng: Random, id: string): Buffer {
  const length = rng.weighted([
    [0, 8],
    [rng.int(1, 100), 30],
    [rng.int(100, 16 * 1024), 42],
    [rng.int(16 * 1024, 256 * 1024), 18],
    [rng.int(256 * 1024, 1024 * 1024), 2],
  ] as const);
  const tag = Buffer.from(`[case ${id}]`);
  if (length === 0) return Buffer.alloc(0);
  const body = rng.chance(0.5)
    ? Buffer.from(
        rng
          .text(Math.min(length, 4096))
          .repeat(Math.ceil(length / 4096))
          .slice(0, length),
        'latin1',
      )
    : rng.bytes(length);
  tag.copy(body, 0, 0, Math.min(tag.length, body.length));
  if (length > 2 * tag.length) tag.copy(body, length - tag.length);
  return body;
}

function casing(rng: Random, name: string): string {
  const form = rng.int(0, 2);
  if (form === 0) return name;
  if (form === 1) return name.toUpperCase();
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

function chunkSizes(rng: Random, length: number): number[] {
  const sizes: number[] = [];
  let left = length;
  while (left > 0 && sizes.length < 64) {
    const size = rng.weighted([
      [rng.int(1, 16), 20],
      [rng.int(16, 4096), 50],
      [rng.int(4096, 65536), 30],
    ] as const);
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

/** Random split points and small delays: framing-preserving. */
function split(rng: Random, bytes: Buffer): Array<{ bytes: Buffer; delayMs: number }> {
  if (bytes.length === 0) return [];
  if (rng.chance(0.5)) return [{ bytes, delayMs: 0 }];
  const writes: Array<{ bytes: Buffer; delayMs: number }> = [];
  let offset = 0;
  while (offset < bytes.length) {
    const size =
      writes.length >= 12
        ? bytes.length - offset
        : rng.weighted([
            [rng.int(1, 8), 25],
            [rng.int(8, 512), 40],
            [rng.int(512, 64 * 1024), 35],
          ] as const);
    writes.push({ bytes: bytes.subarray(offset, offset + size), delayMs: rng.chance(0.3) ? rng.int(0, 15) : 0 });
    offset += size;
  }
  return writes;
}

function headEnd(bytes: Buffer, interimLength: number): number {
  const end = bytes.indexOf('\r\n\r\n', interimLength);
  return end < 0 ? bytes.length : end + 4;
}

function mutateResponse(rng: Random, mutation: string, bytes: Buffer, finish: Finish, interimLength: number): { bytes: Buffer; finish: Finish } {
  const end = headEnd(bytes, interimLength);
  const head = bytes.subarray(interimLength, end).toString('latin1');
  const withHead = (text: string): Buffer => Buffer.concat([bytes.subarray(0, interimLength), Buffer.from(text, 'latin1'), bytes.subarray(end)]);
  const lines = head.split('\r\n');
  switch (mutation) {
    case 'flip': {
      const out = Buffer.from(bytes);
      for (let i = rng.int(1, 3); i > 0 && out.length > 0; i--) {
        const at = rng.chance(0.6) ? rng.int(interimLength, Math.max(interimLength, end - 1)) : rng.int(0, out.length - 1);
        out[at] = out[at]! ^ rng.int(1, 255);
      }
      return { bytes: out, finish };
    }
    case 'truncate':
      return { bytes: bytes.subarray(0, rng.int(0, Math.max(0, bytes.length - 1))), finish: rng.chance(0.7) ? 'end' : 'reset' };
    case 'extra':
      return { bytes: Buffer.concat([bytes, rng.bytes(rng.int(1, 64))]), finish };
    case 'second-response':
      return { bytes: Buffer.concat([bytes, Buffer.from('HTTP/1.1 200 OK\r\nX-Case: smuggled\r\nContent-Length: 15\r\n\r\n[case smuggled]')]), finish };
    case 'duplicate-field': {
      const fieldLines = lines.slice(1, -2);
      if (fieldLines.length === 0) return { bytes, finish };
      const copy = rng.pick(fieldLines);
      const at = rng.int(1, lines.length - 2);
      return { bytes: withHead([...lines.slice(0, at), copy, ...lines.slice(at)].join('\r\n')), finish };
    }
    case 'remove-field': {
      if (lines.length <= 3) return { bytes, finish };
      const at = rng.int(1, lines.length - 3);
      return { bytes: withHead([...lines.slice(0, at), ...lines.slice(at + 1)].join('\r\n')), finish };
    }
    case 'bad-reason': {
      const [version = 'HTTP/1.1', status = '200'] = lines[0]!.split(' ');
      let reason = '';
      for (let i = rng.int(0, 12); i > 0; i--)
        reason += String.fromCharCode(rng.chance(0.3) ? rng.pick([0x01, 0x07, 0x7f, 0x1b, 0x09, 0x0b]) : rng.int(0x20, 0xff));
      return { bytes: withHead([`${version} ${status} ${reason}`, ...lines.slice(1)].join('\r\n')), finish };
    }
    case 'bad-chunk': {
      const body = bytes.subarray(end).toString('latin1');
      const m = /(^|\r\n)([0-9a-fA-F]+)(\r\n)/.exec(body);
      if (m === null) return { bytes: Buffer.concat([bytes.subarray(0, end), Buffer.from('zz\r\n')]), finish };
      const replacement = rng.pick(['zz', '-1', (Number.parseInt(m[2]!, 16) + rng.int(1, 100)).toString(16), '0x10', '', ' 5', 'fffffffffffffffff']);
      const at = m.index + m[1]!.length;
      const broken = body.slice(0, at) + replacement + body.slice(at + m[2]!.length);
      return { bytes: Buffer.concat([bytes.subarray(0, end), Buffer.from(broken, 'latin1')]), finish };
    }
    case 'wrong-length': {
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (m === null) return { bytes: withHead(head.replace(/\r\n\r\n$/, `\r\nContent-Length: ${rng.int(0, 200)}\r\n\r\n`)), finish };
      const wrong = Math.max(0, Number(m[1]) + rng.pick([-1, 1, -10, 10, 1000, -1000]));
      return { bytes: withHead(head.replace(m[0], `\r\nContent-Length: ${wrong}`)), finish };
    }
    case 'length-and-chunked':
      return {
        bytes: withHead(head.replace(/\r\n\r\n$/, /content-length/i.test(head) ? '\r\nTransfer-Encoding: chunked\r\n\r\n' : '\r\nContent-Length: 3\r\n\r\n')),
        finish,
      };
    case 'status-101':
      return {
        bytes: Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'), rng.bytes(rng.int(0, 32))]),
        finish,
      };
    case 'huge-field':
      return { bytes: withHead(head.replace(/\r\n\r\n$/, `\r\nX-Huge: ${'h'.repeat(rng.int(17 * 1024, 40 * 1024))}\r\n\r\n`)), finish };
    case 'many-fields': {
      let extra = '';
      for (let i = rng.int(1000, 3000); i > 0; i--) extra += `x-m${i}: ${i % 7}\r\n`;
      return { bytes: withHead(head.replace(/\r\n\r\n$/, `\r\n${extra}\r\n`)), finish };
    }
    case 'garbage':
      return {
        bytes: rng.chance(0.3) ? Buffer.from('SSH-2.0-OpenSSH_9.6\r\n') : rng.bytes(rng.int(1, 600)),
        finish: rng.pick(['end', 'keep', 'reset'] as const),
      };
    case 'hang':
      return { bytes: bytes.subarray(0, rng.int(0, bytes.length)), finish: 'hang' };
    case 'bare-lf':
      return { bytes: withHead(head.replace(/\r\n/g, '\n')), finish };
    case 'obs-fold': {
      if (lines.length <= 3) return { bytes, finish };
      const at = rng.int(2, lines.length - 2);
      return { bytes: withHead([...lines.slice(0, at), ' folded', ...lines.slice(at)].join('\r\n')), finish };
    }
    case 'nul-in-field':
      return { bytes: withHead(head.replace(/\r\n\r\n$/, '\r\nX-Nul: a\x00b\r\n\r\n')), finish };
    case 'reset':
      return { bytes, finish: 'reset' };
    default:
      return { bytes, finish };
  }
}

function mutateRequest(rng: Random, mutation: string, parts: Buffer[]): Buffer[] {
  const head = parts[0]!.toString('latin1');
  const rest = parts.slice(1);
  const withHead = (text: string): Buffer[] => [Buffer.from(text, 'latin1'), ...rest];
  switch (mutation) {
    case 'flip': {
      const out = Buffer.from(parts[0]!);
      for (let i = rng.int(1, 3); i > 0; i--) {
        const at = rng.int(0, out.length - 1);
        out[at] = out[at]! ^ rng.int(1, 255);
      }
      return [out, ...rest];
    }
    case 'length-and-chunked':
      return withHead(head.replace(/\r\n\r\n$/, '\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n'));
    case 'bad-length':
      return withHead(head.replace(/\r\n\r\n$/, '\r\nContent-Length: 1x\r\n\r\n'));
    case 'huge-field':
      return withHead(head.replace(/\r\n\r\n$/, `\r\nX-Huge: ${'q'.repeat(rng.int(17 * 1024, 70 * 1024))}\r\n\r\n`));
    case 'garbage-field':
      return withHead(head.replace(/\r\n\r\n$/, `\r\nX-Bad: ${rng.bytes(rng.int(1, 20)).toString('latin1').replace(/\r\n/g, '')}\r\n\r\n`));
    case 'duplicate-host':
      return withHead(head.replace(/\r\n\r\n$/, '\r\nHost: other.local\r\n\r\n'));
    case 'short-body': {
      const m = /Content-Length: (\d+)/.exec(head);
      if (m === null) return withHead(head.replace(/\r\n\r\n$/, '\r\nContent-Length: 10\r\n\r\n'));
      return withHead(head.replace(m[0], `Content-Length: ${Number(m[1]) + rng.int(1, 100)}`));
    }
    default:
      return parts;
  }
}

/** Default limits of Node's HTTP parser: a head past these is refused, not relayed. */
const MAX_HEAD = 16 * 1024 - 256;

/** Reads the backend's bytes for a request of `method`: what the client is owed. */
export function referenceOf(c: FuzzCase): Reference {
  const bytes = Buffer.concat(c.writes.map((w) => w.bytes));
  // A reset after a close-delimited body has reached the balancer often reads as a plain end of
  // stream in Node (libuv reports EOF, not ECONNRESET, once every byte was read), so such a body
  // may be relayed as complete — or cut when the reset is seen first; both are owed.
  const parsed = parseResponses(bytes, c.method, c.finish === 'end' || c.finish === 'reset');
  const finalIndex = parsed.messages.findIndex((m) => m.status >= 200 || m.status === 101);
  const final = finalIndex < 0 ? undefined : parsed.messages[finalIndex];
  if (final === undefined) return { final: undefined, strict: false, why: parsed.error ?? 'no final response' };
  if (final.status === 101) return { final: undefined, strict: false, why: '101 without an upgrade request' };
  if (!final.complete) return { final: undefined, strict: false, why: parsed.error ?? 'incomplete' };
  if (final.status > 999) return { final: undefined, strict: false, why: 'status out of range' };
  // Every head (interim ones too) must stay clear of the parser's limit, with a margin for the status line.
  const headBytes = Math.max(...parsed.messages.map((m) => m.headers.reduce((n, [name, value]) => n + name.length + value.length + 4, 64)));
  const strict =
    parsed.error === undefined &&
    parsed.rest.length === 0 &&
    (c.finish === 'keep' || c.finish === 'end') &&
    headBytes < MAX_HEAD &&
    final.headers.length < 500 &&
    final.status >= 200 &&
    final.status <= 599 &&
    isPlainReason(final.reason) &&
    !closesOnUpload(c) &&
    // A transfer coding other than chunked frames the body by the close (RFC 9112 §6.3), but the
    // body is still coded: a gateway may refuse it (NGINX and the balancer answer 502).
    final.headers.every(([n, v]) => n.toLowerCase() !== 'transfer-encoding' || v.trim().toLowerCase() === 'chunked') &&
    final.headers.filter(([n]) => n.toLowerCase() === 'x-case').length === 1;
  return { final, strict, why: strict ? 'well-formed' : (parsed.error ?? (parsed.rest.length > 0 ? 'bytes after the response' : 'edge of the limits')) };
}

/**
 * A backend that answers and closes while the balancer may still be sending it the request body:
 * the close resets the upload, and the write error can reach the balancer (which then gives up on
 * that connection) before the response does, so a 502 or a cut is as right as the response.
 */
function closesOnUpload(c: FuzzCase): boolean {
  if (c.finish !== 'end') return false;
  const head = Buffer.concat(c.request.map((b) => Buffer.from(b))).toString('latin1');
  return /\r\ncontent-length: *[1-9]/i.test(head);
}

function isPlainReason(reason: string): boolean {
  for (let i = 0; i < reason.length; i++) {
    const code = reason.charCodeAt(i);
    if ((code < 0x20 && code !== 9) || code === 0x7f) return false;
  }
  return true;
}
