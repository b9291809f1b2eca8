import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { assertComplete, assertGatewayError, get } from './harness.js';
import { header } from './http1.js';
import { eachVariant, scene } from './scenario.js';

const CACHEABLE = 'Cache-Control: max-age=60\r\n';
const ok = (fields: string, body = 'body'): string => `HTTP/1.1 200 OK\r\n${fields}${CACHEABLE}Content-Length: ${body.length}\r\n\r\n${body}`;

describe('response heads the upstream gets wrong', () => {
  const invalid: Array<[string, string]> = [
    ['a NUL in a field value', 'X-Bad: a\x00b\r\n'],
    ['a lone CR in a field value', 'X-Bad: a\rb\r\n'],
    ['a space in a field name', 'X Bad: b\r\n'],
    ['whitespace before the colon', 'X-Bad : b\r\n'],
    ['a field line without a colon', 'no colon here\r\n'],
    ['an obs-fold continuation line', 'X-Bad: a\r\n folded\r\n'],
    ['a DEL in a field name', 'X-B\x7fad: b\r\n'],
  ];
  for (const [what, fields] of invalid) {
    eachVariant(`${what}: 502`, (variant) =>
      scene(
        variant,
        (conn) => {
          conn.write(ok(fields));
        },
        (s) => s.check(get('/invalid-field'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
      ),
    );
  }

  eachVariant('obs-text (bytes 0x80-0xFF) in a field value is relayed byte for byte', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(ok('X-Latin: caf\xe9 \xff\r\n'));
      },
      (s) =>
        s
          .check(
            get('/obs-text'),
            (reply) => {
              const final = assertComplete(reply, 200, 'body');
              assert.equal(header(final, 'x-latin'), 'caf\xe9 \xff');
            },
            { mayBeStored: true },
          )
          .then(() => {}),
    ),
  );

  eachVariant('obs-text in a field value of a head flushed before its body (no Content-Length) is relayed byte for byte', (variant) =>
    scene(
      variant,
      (conn) => {
        // An HTTP/1.0 close-delimited answer: the balancer sends its head on its own, before any body byte.
        conn.write('HTTP/1.0 200 OK\r\nX-Tag: 8\x92&\r\n\r\n');
        setTimeout(() => conn.socket.end('late body'), 30);
      },
      (s) =>
        s
          .check(
            get('/obs-text-flushed'),
            (reply) => {
              const final = assertComplete(reply, 200, 'late body');
              assert.equal(header(final, 'x-tag'), '8\x92&');
            },
            { mayBeStored: true },
          )
          .then(() => {}),
    ),
  );

  const reasons: Array<[string, string]> = [
    ['a control byte', 'O\x01K'],
    ['a DEL', 'O\x7fK'],
    ['obs-text', 'T\xe8s bien'],
    ['nothing (no reason at all)', ''],
  ];
  for (const [what, reason] of reasons) {
    eachVariant(`a reason phrase holding ${what}: the response is relayed (status and body intact), never a crash`, (variant) =>
      scene(
        variant,
        (conn) => {
          conn.write(`HTTP/1.1 200${reason === '' ? '' : ` ${reason}`}\r\n${CACHEABLE}Content-Length: 4\r\n\r\nbody`);
        },
        (s) =>
          s
            .check(
              get('/reason'),
              (reply) => {
                const final = assertComplete(reply, 200, 'body');
                // Whatever the balancer says instead, it must be a valid reason phrase.
                for (const char of final.reason) {
                  const code = char.charCodeAt(0);
                  assert.ok(code === 9 || (code >= 0x20 && code !== 0x7f), `invalid reason ${JSON.stringify(final.reason)}`);
                }
              },
              { mayBeStored: true },
            )
            .then(() => {}),
      ),
    );
  }

  eachVariant('a header section larger than 16 KiB (the default maxHeaderSize): 502', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(ok(`X-Huge: ${'h'.repeat(20 * 1024)}\r\n`));
      },
      (s) => s.check(get('/huge-head'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
    ),
  );

  eachVariant('thousands of tiny fields (over 16 KiB in all): 502', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(ok(Array.from({ length: 5000 }, (_, i) => `x-${i}: v\r\n`).join('')));
      },
      (s) => s.check(get('/many-fields-big'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
    ),
  );

  eachVariant('1500 fields within 16 KiB: relayed whole, every field with its value, or refused with 502, never with fields silently dropped', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(ok(Array.from({ length: 1500 }, (_, i) => `x-${i}:${i % 10}\r\n`).join('')));
      },
      (s) =>
        s
          .check(
            get('/many-fields'),
            (reply) => {
              if (reply.final?.status === 502) return assertGatewayError(reply, 502);
              const final = assertComplete(reply, 200, 'body');
              const relayed = final.headers.filter(([name]) => /^x-\d+$/.test(name));
              assert.equal(relayed.length, 1500, `${relayed.length} of 1500 fields relayed`);
              for (const [name, value] of relayed) assert.equal(value, String(Number(name.slice(2)) % 10));
            },
            { mayBeStored: true },
          )
          .then(() => {}),
    ),
  );

  const garbage: Array<[string, string | Buffer]> = [
    ['an SSH banner', 'SSH-2.0-OpenSSH_9.6\r\n'],
    ['an HTTP/0.9-style bare body', 'hello world\r\n'],
    ['binary noise', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 131 + 7) % 256))],
    ['a TLS alert', Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])],
    ['a status line without a status code', 'HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n'],
    ['an unknown HTTP version', 'HTTP/3.7 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['LF-only line ends', 'HTTP/1.1 200 OK\nContent-Length: 4\n\nbody'],
  ];
  for (const [what, bytes] of garbage) {
    eachVariant(`${what} instead of a response: 502`, (variant) =>
      scene(
        variant,
        (conn) => {
          conn.write(bytes);
          setTimeout(() => conn.socket.end(), 50);
        },
        (s) => s.check(get('/garbage'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
      ),
    );
  }

  eachVariant('101 Switching Protocols to a plain GET: 502 at once, not a hang', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello');
      },
      async (s) => {
        await s.check(get('/not-an-upgrade'), (reply) => {
          assertGatewayError(reply, 502);
          assert.ok(reply.elapsed < 1000, `answered after ${reply.elapsed} ms`);
          assert.equal(reply.bytes.includes('hello'), false, 'no tunnel bytes reach the client');
        });
      },
      { options: { proxyTimeout: 10_000 } },
    ),
  );
});
