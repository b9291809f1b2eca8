import net, { type Socket } from 'node:net';

// A hand-written HTTP/2 client: Node's own client will not put HEADERS and RST_STREAM for a
// stream into one TCP write, nor send DATA after END_STREAM, which is what an attacker does.

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const DATA = 0x0;
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PING = 0x6;
export const GOAWAY = 0x7;

export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
export const ACK = 0x1;

export const CANCEL = 0x8;
export const ENHANCE_YOUR_CALM = 0xb;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK literal header field without indexing, name from the static table (RFC 7541 §6.2.2), no Huffman. */
function literal(nameIndex: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1');
  if (nameIndex > 14 || bytes.length > 126) throw new Error('this encoder only writes small indexes and short values');
  return Buffer.concat([Buffer.from([nameIndex, bytes.length]), bytes]);
}

/** HPACK literal header field without indexing, new name (RFC 7541 §6.2.2), no Huffman. */
function literalNamed(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  if (n.length > 126 || v.length > 126) throw new Error('this encoder only writes short names and values');
  return Buffer.concat([Buffer.from([0, n.length]), n, Buffer.from([v.length]), v]);
}

/** HEADERS for a GET (or `method`) of `path` with extra `fields`, the whole block in one frame. */
export function headers(
  streamId: number,
  path: string,
  { method = 'GET', authority = 'example.test', endStream = true, fields = {} as Readonly<Record<string, string>> } = {},
): Buffer {
  // Static table: 1 :authority, 2 :method, 4 :path, 6 :scheme.
  const extra = Object.entries(fields).map(([name, value]) => literalNamed(name, value));
  const block = Buffer.concat([literal(2, method), literal(6, 'http'), literal(4, path), literal(1, authority), ...extra]);
  return frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), streamId, block);
}

export function rstStream(streamId: number, code = CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(RST_STREAM, 0, streamId, payload);
}

export function data(streamId: number, body: string, endStream = false): Buffer {
  return frame(DATA, endStream ? END_STREAM : 0, streamId, Buffer.from(body, 'latin1'));
}

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A raw h2c connection that acknowledges the server's SETTINGS and records every frame it gets. */
export interface RawH2 {
  socket: Socket;
  frames: Frame[];
  /** The GOAWAY received, if any: last stream id and error code. */
  goaway: { lastStreamId: number; code: number } | undefined;
  /** Resolves when the server closes the connection (or it fails). */
  closed: Promise<void>;
  write(data: Buffer): void;
  /** HEADERS frames (responses) received, by stream id. */
  responded(): Set<number>;
}

export function rawH2(port: number): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buffered = Buffer.alloc(0);
    let onClosed!: () => void;
    const client: RawH2 = {
      socket,
      frames: [],
      goaway: undefined,
      closed: new Promise<void>((done) => (onClosed = done)),
      write: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
      responded: () => new Set(client.frames.filter((f) => f.type === HEADERS).map((f) => f.streamId)),
    };
    socket.on('error', () => {});
    socket.on('close', () => onClosed());
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const f: Frame = {
          type: buffered[3]!,
          flags: buffered[4]!,
          streamId: buffered.readUInt32BE(5) & 0x7fffffff,
          payload: buffered.subarray(9, 9 + length),
        };
        buffered = buffered.subarray(9 + length);
        client.frames.push(f);
        if (f.type === SETTINGS && (f.flags & ACK) === 0) client.write(frame(SETTINGS, ACK, 0));
        if (f.type === GOAWAY) client.goaway = { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
      }
    });
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
      resolve(client);
    });
    socket.once('error', reject);
  });
}

/** `count` streams from `firstId` on, each HEADERS then RST_STREAM, all in one buffer (one write). */
export function rapidResets(firstId: number, count: number, path = '/'): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstId + 2 * i;
    parts.push(headers(id, path), rstStream(id));
  }
  return Buffer.concat(parts);
}
