// The two messages of grpc.health.v1 (grpc's doc/health-checking.md), encoded by hand: a check
// needs one string field out and one enum field back, not a protobuf runtime.
//   message HealthCheckRequest { string service = 1; }
//   message HealthCheckResponse { ServingStatus status = 1; }   // UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
export const SERVING = 1;
const STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** The name of a ServingStatus value, as the proto spells it. */
export function servingStatusName(status: number): string {
  return STATUS_NAMES[status] ?? `status ${status}`;
}

/** A HealthCheckRequest for `service` in gRPC's message framing (flag byte, 4-byte length, message). */
export function healthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  // proto3 leaves a default (empty) string off the wire.
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/**
 * The ServingStatus of the first HealthCheckResponse in `body` (gRPC-framed), or a reason it
 * cannot be read. Unknown fields are skipped, as protobuf readers must.
 */
export function servingStatus(body: Buffer): number | string {
  if (body.length < 5) return 'no response message';
  if (body[0] !== 0) return 'compressed response message';
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return 'response message cut short';
  const message = body.subarray(5, 5 + length);
  let status = 0;
  let at = 0;
  while (at < message.length) {
    const key = readVarint(message, at);
    if (key === undefined) return 'malformed response message';
    at = key.next;
    const field = key.value >>> 3;
    const wireType = key.value & 7;
    if (wireType === 0) {
      const value = readVarint(message, at);
      if (value === undefined) return 'malformed response message';
      if (field === 1) status = value.value;
      at = value.next;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const size = readVarint(message, at);
      if (size === undefined) return 'malformed response message';
      at = size.next + size.value;
    } else return 'malformed response message';
  }
  return at === message.length ? status : 'malformed response message';
}

/** A varint of at most 32 significant bits (every field here fits) at `at`, and where the next byte is. */
function readVarint(bytes: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 10 && at + i < bytes.length; i++) {
    const byte = bytes[at + i]!;
    if (i < 5) value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value: value % 2 ** 32, next: at + i + 1 };
  }
  return undefined;
}
