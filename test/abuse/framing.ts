/**
 * The request-framing matrix (methods × framings × fronts): the requests, a raw backend that keeps
 * every byte it receives, a strict HTTP/1.1 request reader for those bytes, a raw HTTP/2 (h2c)
 * client writing its own frames and HPACK literals, and the verdict. Shared by
 * framing-matrix.test.ts and the fuzzer (test/fuzz/cases.ts).
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { hasControl, TOKEN } from '../upstream/http1.js';

export const METHODS = ['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'POST', 'PUT', 'PATCH', 'PURGEX'] as const;

/** A body that reads as a whole request if it reaches the backend without framing. */
export function smuggleBody(tag: string): Buffer {
  return Buffer.from(`GET /smuggled/${tag} HTTP/1.1\r\nHost: smuggled.test\r\nX-Smuggled: ${tag}\r\n\r\n`, 'latin1');
}

/** Junk fields ahead of the framing field: more than Node's maxHeadersCount (2000), inside its 16 KiB head limit. */
export const FLOOD_FIELDS = 2100;

type Field = [string, string];

export interface Framing {
  name: string;
  /** Carries the body (else no body at all). */
  body: boolean;
  /** A valid request by RFC 9112: refusing it is a failure, it must be forwarded intact. */
  valid: boolean;
  /** HTTP/1.1: the framing field lines (raw, CRLF-terminated) and how the body is encoded. */
  h1Lines(length: number): string;
  h1Coding: 'length' | 'chunked' | 'chunked-ext' | 'none';
  /** HTTP/2: the framing fields sent as HPACK literals (undefined: none besides what the front adds), and whether the front's content-length applies. */
  h2Fields(length: number): Field[];
  /** DATA in several frames, and trailers after (h2 counterparts of chunked and chunked with trailers). */
  h2Pieces: number;
  h2Trailers: boolean;
}

const flood = (): string => 'X: 1\r\n'.repeat(FLOOD_FIELDS);
const floodFields = (): Field[] => Array.from({ length: FLOOD_FIELDS }, (): Field => ['x', '1']);

const framing = (f: Partial<Framing> & Pick<Framing, 'name' | 'h1Lines' | 'h1Coding'>): Framing => ({
  body: true,
  valid: false,
  h2Fields: () => [],
  h2Pieces: 1,
  h2Trailers: false,
  ...f,
});

export const FRAMINGS: readonly Framing[] = [
  framing({ name: 'none', body: false, valid: true, h1Lines: () => '', h1Coding: 'none' }),
  framing({ name: 'content-length', valid: true, h1Lines: (n) => `Content-Length: ${n}\r\n`, h1Coding: 'length' }),
  framing({ name: 'chunked', valid: true, h1Lines: () => 'Transfer-Encoding: chunked\r\n', h1Coding: 'chunked', h2Pieces: 3 }),
  framing({
    name: 'chunked with extensions and trailers',
    valid: true,
    h1Lines: () => 'Transfer-Encoding: chunked\r\n',
    h1Coding: 'chunked-ext',
    h2Pieces: 3,
    h2Trailers: true,
  }),
  framing({
    name: 'chunked as ChUnKeD',
    valid: true,
    h1Lines: () => 'Transfer-Encoding: ChUnKeD\r\n',
    h1Coding: 'chunked',
    h2Fields: () => [['transfer-encoding', 'ChUnKeD']],
  }),
  framing({
    name: 'Content-Length and Transfer-Encoding',
    h1Lines: (n) => `Content-Length: ${n}\r\nTransfer-Encoding: chunked\r\n`,
    h1Coding: 'chunked',
    h2Fields: (n) => [
      ['content-length', String(n)],
      ['transfer-encoding', 'chunked'],
    ],
  }),
  framing({
    name: 'Transfer-Encoding twice',
    h1Lines: () => 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n',
    h1Coding: 'chunked',
    h2Fields: () => [
      ['transfer-encoding', 'chunked'],
      ['transfer-encoding', 'chunked'],
    ],
  }),
  framing({
    name: 'Transfer-Encoding: chunked, identity',
    h1Lines: () => 'Transfer-Encoding: chunked, identity\r\n',
    h1Coding: 'chunked',
    h2Fields: () => [['transfer-encoding', 'chunked, identity']],
  }),
  framing({
    name: 'Transfer-Encoding: xchunked',
    h1Lines: () => 'Transfer-Encoding: xchunked\r\n',
    h1Coding: 'chunked',
    h2Fields: () => [['transfer-encoding', 'xchunked']],
  }),
  framing({
    name: 'Transfer-Encoding with tabs and spaces around chunked',
    h1Lines: () => 'Transfer-Encoding:\t  chunked \t\r\n',
    h1Coding: 'chunked',
    h2Fields: () => [['transfer-encoding', ' chunked']],
  }),
  framing({
    name: 'Transfer-Encoding : chunked (space before the colon)',
    h1Lines: () => 'Transfer-Encoding : chunked\r\n',
    h1Coding: 'chunked',
    h2Fields: () => [['transfer-encoding ', 'chunked']],
  }),
  framing({
    name: 'Content-Length list',
    h1Lines: (n) => `Content-Length: ${n}, ${n}\r\n`,
    h1Coding: 'length',
    h2Fields: (n) => [['content-length', `${n}, ${n}`]],
  }),
  framing({
    name: 'Content-Length twice, same value',
    h1Lines: (n) => `Content-Length: ${n}\r\nContent-Length: ${n}\r\n`,
    h1Coding: 'length',
    h2Fields: (n) => [
      ['content-length', String(n)],
      ['content-length', String(n)],
    ],
  }),
  framing({
    name: 'Content-Length twice, 0 then the length',
    h1Lines: (n) => `Content-Length: 0\r\nContent-Length: ${n}\r\n`,
    h1Coding: 'length',
    h2Fields: (n) => [
      ['content-length', '0'],
      ['content-length', String(n)],
    ],
  }),
  framing({
    name: `${FLOOD_FIELDS} fields before Content-Length`,
    h1Lines: (n) => `${flood()}Content-Length: ${n}\r\n`,
    h1Coding: 'length',
    h2Fields: (n) => [...floodFields(), ['content-length', String(n)]],
  }),
  framing({
    name: `${FLOOD_FIELDS} fields before Transfer-Encoding`,
    h1Lines: () => `${flood()}Transfer-Encoding: chunked\r\n`,
    h1Coding: 'chunked',
    h2Fields: () => [...floodFields(), ['transfer-encoding', 'chunked']],
  }),
];

/** Splits `body` into `count` nearly equal pieces (at least one byte each when possible). */
export function pieces(body: Buffer, count: number): Buffer[] {
  if (body.length === 0) return [];
  const size = Math.max(1, Math.ceil(body.length / count));
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) out.push(body.subarray(at, at + size));
  return out;
}

function chunkedBody(body: Buffer, extensions: boolean): Buffer {
  const parts: Buffer[] = [];
  pieces(body, 3).forEach((piece, i) => {
    parts.push(Buffer.from(`${piece.length.toString(16)}${extensions ? `;ext${i}=1;q="a b"` : ''}\r\n`, 'latin1'), piece, Buffer.from('\r\n'));
  });
  parts.push(Buffer.from(extensions ? '0;last=1\r\nX-Trailer: t\r\n\r\n' : '0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

/** The HTTP/1.1 request: head and encoded body. */
export function h1Request(method: string, path: string, f: Framing, body: Buffer): Buffer {
  const content = f.body ? body : Buffer.alloc(0);
  const head = `${method} ${path} HTTP/1.1\r\nHost: matrix.test\r\n${f.h1Lines(content.length)}\r\n`;
  const encoded = f.h1Coding === 'chunked' ? chunkedBody(content, false) : f.h1Coding === 'chunked-ext' ? chunkedBody(content, true) : content;
  return Buffer.concat([Buffer.from(head, 'latin1'), encoded]);
}

export type H2Front = 'h2 with content-length' | 'h2 without content-length' | 'h2 DATA after END_STREAM';
export const H2_FRONTS: readonly H2Front[] = ['h2 with content-length', 'h2 without content-length', 'h2 DATA after END_STREAM'];

export interface H2Request {
  fields: Field[];
  /** DATA frames; the last ends the stream unless trailers follow (or `afterEnd`). */
  data: Buffer[];
  trailers: Field[];
  /** HEADERS ends the stream and DATA follows anyway (a protocol error). */
  afterEnd: boolean;
}

export function h2Request(method: string, path: string, f: Framing, body: Buffer, front: H2Front): H2Request {
  const content = f.body ? body : Buffer.alloc(0);
  const fields: Field[] = [
    [':method', method],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'matrix.test'],
  ];
  const own = f.h2Fields(content.length);
  const declares = own.some(([n]) => n === 'content-length');
  if (front === 'h2 with content-length' && f.body && !declares) fields.push(['content-length', String(content.length)]);
  fields.push(...own);
  if (front === 'h2 DATA after END_STREAM') return { fields, data: [f.body ? content : smuggleBody('after-end')], trailers: [], afterEnd: true };
  return { fields, data: pieces(content, f.h2Pieces), trailers: f.h2Trailers ? [['x-trailer', 't']] : [], afterEnd: false };
}

/** What the origin is owed: the body as the client framed it (empty after END_STREAM). */
export function expectedBody(f: Framing, body: Buffer, front: 'h1' | H2Front): Buffer {
  if (!f.body || front === 'h2 DATA after END_STREAM') return Buffer.alloc(0);
  return body;
}

// ---------------------------------------------------------------------------------------------
// A strict HTTP/1.1 request reader.

export interface ParsedRequest {
  method: string;
  target: string;
  headers: Field[];
  framing: 'length' | 'chunked' | 'none';
  body: Buffer;
}

export interface ParsedStream {
  requests: ParsedRequest[];
  /** Why reading stopped before the end (a malformed head or framing), or 'incomplete' for a cut message. */
  error: string | undefined;
  /** Bytes not read as a complete request. */
  rest: Buffer;
}

/** Reads every request in `bytes`, strictly: anything a careful origin would not read the one way it was meant is an error. */
export function parseRequests(bytes: Buffer): ParsedStream {
  const requests: ParsedRequest[] = [];
  let offset = 0;
  const stop = (error: string): ParsedStream => ({ requests, error, rest: bytes.subarray(offset) });
  while (offset < bytes.length) {
    const headEnd = bytes.indexOf('\r\n\r\n', offset, 'latin1');
    if (headEnd < 0) return stop('incomplete head');
    const lines = bytes.subarray(offset, headEnd).toString('latin1').split('\r\n');
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.1$/.exec(lines[0]!);
    if (m === null) return stop(`bad request line ${JSON.stringify(lines[0]!.slice(0, 60))}`);
    const headers: Field[] = [];
    for (const line of lines.slice(1)) {
      if (line.includes('\n') || line.includes('\r')) return stop('bare CR/LF in head');
      const colon = line.indexOf(':');
      const name = line.slice(0, Math.max(0, colon));
      if (colon <= 0 || !TOKEN.test(name)) return stop(`bad field line ${JSON.stringify(line.slice(0, 60))}`);
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (hasControl(value)) return stop(`control byte in ${name}`);
      headers.push([name, value]);
    }
    const values = (n: string): string[] => headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
    const lengths = values('content-length');
    const codings = values('transfer-encoding');
    let at = headEnd + 4;
    const request: ParsedRequest = { method: m[1]!, target: m[2]!, headers, framing: 'none', body: Buffer.alloc(0) };
    if (lengths.length > 0 && codings.length > 0) return stop('both Content-Length and Transfer-Encoding');
    if (lengths.length > 1) return stop('Content-Length twice');
    if (codings.length > 1) return stop('Transfer-Encoding twice');
    if (codings.length === 1) {
      if (codings[0]!.toLowerCase() !== 'chunked') return stop(`Transfer-Encoding ${JSON.stringify(codings[0])}`);
      request.framing = 'chunked';
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', at, 'latin1');
        if (lineEnd < 0) return stop('incomplete chunked body');
        const sizeLine = bytes.subarray(at, lineEnd).toString('latin1');
        const s = /^([0-9A-Fa-f]{1,15})(;[^\r\n]*)?$/.exec(sizeLine);
        if (s === null || (s[2] !== undefined && hasControl(s[2]))) return stop(`bad chunk size line ${JSON.stringify(sizeLine.slice(0, 40))}`);
        const size = Number.parseInt(s[1]!, 16);
        at = lineEnd + 2;
        if (size === 0) {
          for (;;) {
            const end = bytes.indexOf('\r\n', at, 'latin1');
            if (end < 0) return stop('incomplete trailers');
            const trailer = bytes.subarray(at, end).toString('latin1');
            at = end + 2;
            if (trailer === '') break;
            const colon = trailer.indexOf(':');
            if (colon <= 0 || !TOKEN.test(trailer.slice(0, colon))) return stop('bad trailer');
          }
          break;
        }
        if (bytes.length < at + size + 2) return stop('incomplete chunk');
        parts.push(bytes.subarray(at, at + size));
        at += size;
        if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) return stop('chunk data not followed by CRLF');
        at += 2;
      }
      request.body = Buffer.concat(parts);
    } else if (lengths.length === 1) {
      if (!/^\d{1,15}$/.test(lengths[0]!)) return stop(`bad Content-Length ${JSON.stringify(lengths[0])}`);
      const length = Number(lengths[0]);
      request.framing = 'length';
      if (bytes.length < at + length) return stop('incomplete body');
      request.body = bytes.subarray(at, at + length);
      at += length;
    }
    requests.push(request);
    offset = at;
  }
  return { requests, error: undefined, rest: Buffer.alloc(0) };
}

// ---------------------------------------------------------------------------------------------
// A raw backend that keeps every byte, per connection, and answers each request it can read.

export interface RecordingBackend {
  port: number;
  url: string;
  /** Every connection ever accepted, with all its bytes. */
  connections: Array<{ socket: Socket; chunks: Buffer[]; length: number }>;
  /** Where each connection's bytes stood: pass to `since`. */
  mark(): number[];
  /** The bytes each connection received since `mark` (connections opened since included), non-empty ones only. */
  since(mark: number[]): Buffer[];
  /** Resolves once no byte arrived for `quietMs` (and at least `quietMs` from now). */
  settled(quietMs?: number): Promise<void>;
  /** Destroys every open connection (a clean slate after a failed case). */
  reset(): void;
  close(): Promise<void>;
}

export const BACKEND_BODY = 'ok';

export async function recordingBackend(): Promise<RecordingBackend> {
  let lastByte = 0;
  const state: RecordingBackend = {
    port: 0,
    url: '',
    connections: [],
    mark: () => state.connections.map((c) => c.length),
    since: (mark) =>
      state.connections
        .map((c, i) => {
          const all = Buffer.concat(c.chunks);
          return all.subarray(mark[i] ?? 0);
        })
        .filter((b) => b.length > 0),
    settled: async (quietMs = 25) => {
      const from = Date.now();
      for (;;) {
        const wait = Math.max(lastByte, from) + quietMs - Date.now();
        if (wait <= 0) return;
        await new Promise((r) => setTimeout(r, wait));
      }
    },
    reset: () => {
      for (const c of state.connections) c.socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        state.reset();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((socket) => {
    const record = { socket, chunks: [] as Buffer[], length: 0 };
    state.connections.push(record);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      lastByte = Date.now();
      record.chunks.push(data);
      record.length += data.length;
      pending = Buffer.concat([pending, data]);
      const parsed = parseRequests(pending);
      for (const request of parsed.requests) {
        const body = request.method === 'HEAD' ? '' : BACKEND_BODY;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BACKEND_BODY.length}\r\nX-Backend: raw\r\n\r\n${body}`);
      }
      pending = parsed.rest;
      if (parsed.error !== undefined && !parsed.error.startsWith('incomplete')) {
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        pending = Buffer.alloc(0);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

/** Why what the backend received is not exactly the one request owed (undefined when it is). */
export function upstreamProblem(received: Buffer[], method: string, path: string, body: Buffer): string | undefined {
  const requests: ParsedRequest[] = [];
  for (const bytes of received) {
    const parsed = parseRequests(bytes);
    requests.push(...parsed.requests);
    if (parsed.error !== undefined) return `${parsed.error} after ${parsed.requests.length} request(s): ${show(parsed.rest)}`;
  }
  if (requests.length !== 1) return `${requests.length} requests upstream: ${requests.map((r) => `${r.method} ${r.target}`).join(', ')}`;
  const r = requests[0]!;
  if (r.method !== method || r.target !== path) return `the request upstream is ${r.method} ${r.target}`;
  if (!r.body.equals(body)) return `body upstream ${show(r.body)} (${r.framing}), sent ${show(body)}`;
  if (body.length > 0 && r.framing === 'none') return 'a body without framing';
  return undefined;
}

/** Bytes for a failure message: latin1 as JSON, long runs of the flood folded. */
export function show(bytes: Buffer, max = 700): string {
  const text = bytes.toString('latin1').replace(/(?:X: 1\r\n){3,}/gi, (run) => `<${run.length / 6} × "X: 1\\r\\n">`);
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text);
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/2 client over cleartext (prior knowledge).

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const MAX_FRAME = 16_384;

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  out.push(rest);
  return Buffer.from(out);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** A header block of literals without indexing, new names (RFC 7541 §6.2.2): no table state, any name or value. */
export function hpackLiterals(fields: Field[]): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

function headerFrames(block: Buffer, stream: number, endStream: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at === 0 || at < block.length; at += MAX_FRAME) {
    const piece = block.subarray(at, at + MAX_FRAME);
    const last = at + MAX_FRAME >= block.length;
    const flags = (last ? END_HEADERS : 0) | (at === 0 && endStream ? END_STREAM : 0);
    out.push(frame(at === 0 ? HEADERS : CONTINUATION, flags, stream, piece));
  }
  return out;
}

/** The frames of one request on stream 1, after the preface and an empty SETTINGS. */
export function h2Frames(req: H2Request): Buffer {
  const frames: Buffer[] = [PREFACE, frame(SETTINGS, 0, 0)];
  const bodyless = req.data.length === 0 && req.trailers.length === 0;
  frames.push(...headerFrames(hpackLiterals(req.fields), 1, bodyless || req.afterEnd));
  req.data.forEach((data, i) => {
    const last = i === req.data.length - 1 && req.trailers.length === 0 && !req.afterEnd;
    frames.push(frame(DATA, last ? END_STREAM : 0, 1, data));
  });
  if (req.afterEnd) frames.push(frame(DATA, END_STREAM, 1, Buffer.alloc(0)));
  if (req.trailers.length > 0) frames.push(...headerFrames(hpackLiterals(req.trailers), 1, true));
  return Buffer.concat(frames);
}

// Huffman codes of the digits (RFC 7541 Appendix B), enough to read a :status.
const DIGIT_CODES: Array<[number, number]> = [
  [0x0, 5],
  [0x1, 5],
  [0x2, 5],
  [0x19, 6],
  [0x1a, 6],
  [0x1b, 6],
  [0x1c, 6],
  [0x1d, 6],
  [0x1e, 6],
  [0x1f, 6],
];

function huffmanDigits(bytes: Buffer): string {
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  let at = 0;
  while (out.length < 3) {
    const digit = DIGIT_CODES.findIndex(([code, length]) => bits.slice(at, at + length) === code.toString(2).padStart(length, '0'));
    if (digit < 0) break;
    out += String(digit);
    at += DIGIT_CODES[digit]![1];
  }
  return out;
}

const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/** The :status of the first response header block on a fresh connection (empty dynamic table): its first field. */
export function statusOf(block: Buffer): number | undefined {
  const first = block[0];
  if (first === undefined) return undefined;
  if (first & 0x80) return STATIC_STATUS[first & 0x7f];
  const nameIndex = (first & 0xc0) === 0x40 ? first & 0x3f : first & 0x0f;
  if (nameIndex !== 8) return undefined;
  const length = block[1]! & 0x7f;
  const value = block.subarray(2, 2 + length);
  const text = block[1]! & 0x80 ? huffmanDigits(value) : value.toString('latin1');
  return /^\d{3}$/.test(text) ? Number(text) : undefined;
}

export interface H2Reply {
  status: number | undefined;
  body: Buffer;
  /** The response ended with END_STREAM. */
  complete: boolean;
  /** RST_STREAM error code on stream 1, GOAWAY error code. */
  reset: number | undefined;
  goaway: number | undefined;
  closed: boolean;
}

/** Sends one raw h2c request on a fresh connection and reads stream 1's answer. */
export function h2Send(port: number, req: H2Request, idleMs = 1000): Promise<H2Reply> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const reply: H2Reply = { status: undefined, body: Buffer.alloc(0), complete: false, reset: undefined, goaway: undefined, closed: false };
    let buffer: Buffer = Buffer.alloc(0);
    let block: Buffer[] = [];
    let blockEnds = false;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const idle = (): void => {
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    const onHeaderBlock = (payload: Buffer, flags: number, last: boolean): void => {
      block.push(payload);
      if (!last) return;
      const whole = Buffer.concat(block);
      block = [];
      if (reply.status === undefined) reply.status = statusOf(whole);
      if (flags & END_STREAM || blockEnds) {
        reply.complete = true;
        finish();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      idle();
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3);
        if (buffer.length < 9 + length) break;
        const type = buffer[3]!;
        const flags = buffer[4]!;
        const stream = buffer.readUInt32BE(5) & 0x7fffffff;
        let payload = buffer.subarray(9, 9 + length);
        buffer = buffer.subarray(9 + length);
        if (type === SETTINGS && !(flags & 0x1)) socket.write(frame(SETTINGS, 0x1, 0));
        if (type === GOAWAY) {
          reply.goaway = payload.readUInt32BE(4);
          finish();
          return;
        }
        if (stream !== 1) continue;
        if (type === RST_STREAM) {
          reply.reset = payload.readUInt32BE(0);
          finish();
          return;
        }
        if (type === HEADERS) {
          if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]!); // PADDED
          if (flags & 0x20) payload = payload.subarray(5); // PRIORITY
          blockEnds = (flags & END_STREAM) !== 0;
          onHeaderBlock(payload, flags, (flags & END_HEADERS) !== 0);
        } else if (type === CONTINUATION) {
          onHeaderBlock(payload, blockEnds ? END_STREAM : 0, (flags & END_HEADERS) !== 0);
        } else if (type === DATA) {
          if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]!);
          reply.body = Buffer.concat([reply.body, payload]);
          if (flags & END_STREAM) {
            reply.complete = true;
            finish();
            return;
          }
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      reply.closed = true;
      finish();
    });
    socket.on('connect', () => {
      idle();
      socket.write(h2Frames(req));
    });
  });
}
