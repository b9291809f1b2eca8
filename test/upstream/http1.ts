/**
 * A small HTTP/1.1 response reader for tests: what a client (or a conforming parser reading an
 * upstream's bytes) makes of a byte stream. It follows RFC 9112 framing with llhttp's acceptance
 * rules where they matter (a duplicate Content-Length, Content-Length with Transfer-Encoding, a
 * bare LF, obs-fold, whitespace before the colon, control bytes in a field value are all errors;
 * obs-text and control bytes in the reason phrase are accepted), so the tests and the fuzzer can
 * tell a well-formed message from a broken one and a complete body from a cut one.
 */

export type Framing = 'length' | 'chunked' | 'close' | 'none';

export interface Message {
  version: string;
  status: number;
  reason: string;
  /** Field lines in order, names as sent (latin1). */
  headers: [string, string][];
  body: Buffer;
  /** Trailer fields of a chunked body. */
  trailers: [string, string][];
  framing: Framing;
  /** The framing's end was seen (for 'close': the stream ended). */
  complete: boolean;
}

export interface Parsed {
  /** Interim (1xx but 101) and final responses, in order. */
  messages: Message[];
  /** Why reading stopped before the end of the bytes, if it did. */
  error: string | undefined;
  /** Bytes left after the last complete message (a 101's tunnel, or what followed an error). */
  rest: Buffer;
}

export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Field values are HTAB, SP, VCHAR and obs-text: any other control byte (NUL, CR alone, DEL...) is an error. */
export function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

export function header(message: Pick<Message, 'headers'>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of message.headers) if (n.toLowerCase() === lower) return v;
  return undefined;
}

export function headerValues(message: Pick<Message, 'headers'>, name: string): string[] {
  const lower = name.toLowerCase();
  return message.headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** Whether a response to `method` with `status` has no body whatever its headers say. */
export function bodiless(method: string, status: number): boolean {
  return method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
}

/**
 * Reads the responses in `bytes` (everything a connection delivered), for a request of `method`.
 * `ended`: the stream ended there (so a close-delimited body is complete). `responses`: stop after
 * this many final responses (one per request sent on the connection).
 */
export function parseResponses(bytes: Buffer, method: string | string[], ended: boolean, responses = 1): Parsed {
  const methods = Array.isArray(method) ? method : [method];
  const messages: Message[] = [];
  let offset = 0;
  let finals = 0;
  while (offset < bytes.length && finals < responses) {
    const result = readOne(bytes, offset, methods[Math.min(finals, methods.length - 1)]!, ended);
    if (result.message !== undefined) messages.push(result.message);
    if (result.error !== undefined) return { messages, error: result.error, rest: bytes.subarray(result.next ?? offset) };
    offset = result.next!;
    const status = result.message!.status;
    if (status >= 200 || status === 101) finals++;
    if (status === 101 || !result.message!.complete) break;
  }
  return { messages, error: undefined, rest: bytes.subarray(offset) };
}

interface ReadResult {
  message?: Message;
  error?: string;
  next?: number;
}

function readOne(bytes: Buffer, start: number, method: string, ended: boolean): ReadResult {
  const headEnd = bytes.indexOf('\r\n\r\n', start, 'latin1');
  if (headEnd < 0) {
    const lf = bytes.indexOf('\n\n', start, 'latin1');
    if (lf >= 0 && bytes.indexOf('\r\n\r\n', start) < 0) return { error: 'bare LF' };
    return { error: ended ? 'head cut short' : 'head incomplete' };
  }
  const head = bytes.subarray(start, headEnd).toString('latin1');
  const lines = head.split('\r\n');
  const statusLine = lines[0]!;
  const match = /^HTTP\/(1\.[01]) (\d{3})(?: ([^\r\n]*))?$/.exec(statusLine);
  if (match === null) return { error: `bad status line ${JSON.stringify(statusLine.slice(0, 40))}` };
  const status = Number(match[2]);
  const reason = match[3] ?? '';
  if (reason.includes('\0') || reason.includes('\r') || reason.includes('\n')) return { error: 'bad reason phrase' };
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.includes('\n')) return { error: 'bare LF in head' };
    if (line.startsWith(' ') || line.startsWith('\t')) return { error: 'obs-fold' };
    const colon = line.indexOf(':');
    if (colon <= 0) return { error: `field line without a name: ${JSON.stringify(line.slice(0, 40))}` };
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return { error: `bad field name ${JSON.stringify(name.slice(0, 40))}` };
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (hasControl(value)) return { error: `bad field value in ${name}` };
    headers.push([name, value]);
  }
  const bodyStart = headEnd + 4;
  const message: Message = { version: match[1]!, status, reason, headers, body: Buffer.alloc(0), trailers: [], framing: 'none', complete: true };
  const lengths = headerValues(message, 'content-length');
  const codings = headerValues(message, 'transfer-encoding');
  if (lengths.length > 1) return { error: 'duplicate Content-Length' };
  if (lengths.length === 1 && codings.length > 0) return { error: 'Content-Length with Transfer-Encoding' };
  if (lengths.length === 1 && !/^\d+$/.test(lengths[0]!)) return { error: 'bad Content-Length' };
  if (status === 101 || bodiless(method, status)) return { message, next: bodyStart };
  if (codings.length > 0) {
    const list = codings
      .join(',')
      .split(',')
      .map((c) => c.trim().toLowerCase());
    if (list.at(-1) === 'chunked') {
      if (list.indexOf('chunked') !== list.length - 1) return { error: 'chunked applied twice' };
      return readChunked(bytes, bodyStart, message);
    }
    message.framing = 'close';
  } else if (lengths.length === 1) {
    const length = Number(lengths[0]);
    message.framing = 'length';
    const available = Math.min(length, bytes.length - bodyStart);
    message.body = bytes.subarray(bodyStart, bodyStart + available);
    message.complete = available === length;
    return { message, next: bodyStart + available };
  } else {
    message.framing = 'close';
  }
  message.body = bytes.subarray(bodyStart);
  message.complete = ended;
  return { message, next: bytes.length };
}

function readChunked(bytes: Buffer, start: number, message: Message): ReadResult {
  message.framing = 'chunked';
  message.complete = false;
  const parts: Buffer[] = [];
  let offset = start;
  const done = (error?: string): ReadResult => {
    message.body = Buffer.concat(parts);
    return error === undefined ? { message, next: offset } : { message, error, next: offset };
  };
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset, 'latin1');
    if (lineEnd < 0) return done();
    const line = bytes.subarray(offset, lineEnd).toString('latin1');
    const m = /^([0-9A-Fa-f]+)[ \t]*(;.*)?$/.exec(line);
    if (m === null || m[1]!.length > 15) return done('bad chunk size');
    if (m[2] !== undefined && hasControl(m[2])) return done('bad chunk extension');
    const size = Number.parseInt(m[1]!, 16);
    offset = lineEnd + 2;
    if (size === 0) {
      // Trailer section up to the empty line.
      for (;;) {
        const end = bytes.indexOf('\r\n', offset, 'latin1');
        if (end < 0) return done();
        const trailer = bytes.subarray(offset, end).toString('latin1');
        offset = end + 2;
        if (trailer === '') {
          message.complete = true;
          return done();
        }
        const colon = trailer.indexOf(':');
        if (colon <= 0 || !TOKEN.test(trailer.slice(0, colon))) return done('bad trailer');
        message.trailers.push([trailer.slice(0, colon), trailer.slice(colon + 1).trim()]);
      }
    }
    if (bytes.length - offset < size) {
      parts.push(bytes.subarray(offset));
      offset = bytes.length;
      return done();
    }
    parts.push(bytes.subarray(offset, offset + size));
    offset += size;
    if (bytes.length - offset < 2) return done();
    if (bytes[offset] !== 0x0d || bytes[offset + 1] !== 0x0a) return done('chunk data not followed by CRLF');
    offset += 2;
  }
}

/** Serialises `body` as chunks of the given sizes (the rest as one last chunk), with optional trailers. */
export function chunked(body: Buffer, sizes: number[] = [], trailers = ''): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (const size of sizes) {
    if (offset >= body.length) break;
    const piece = body.subarray(offset, offset + Math.max(1, size));
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    offset += piece.length;
  }
  if (offset < body.length) parts.push(Buffer.from(`${(body.length - offset).toString(16)}\r\n`), body.subarray(offset), Buffer.from('\r\n'));
  parts.push(Buffer.from(`0\r\n${trailers}\r\n`));
  return Buffer.concat(parts);
}
