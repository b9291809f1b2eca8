import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { delay } from '../helpers.js';
import { assertComplete, assertErrorOrCut, describeReply } from './harness.js';
import { eachVariant, scene } from './scenario.js';

const CHUNK = Buffer.alloc(64 * 1024, 'u');

/** A request head and `size` bytes of body in 64 KiB parts. */
function upload(method: string, path: string, size: number): Array<string | Buffer> {
  const parts: Array<string | Buffer> = [
    `${method} ${path} HTTP/1.1\r\nHost: test.local\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`,
  ];
  for (let sent = 0; sent < size; sent += CHUNK.length) parts.push(CHUNK.subarray(0, Math.min(CHUNK.length, size - sent)));
  return parts;
}

const TOO_LARGE = 'HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large';

describe('uploads the upstream does not take', () => {
  eachVariant('a 413 before reading an 8 MB upload, then a graceful close: the client gets the 413', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(TOO_LARGE);
        // Half-close and keep discarding what arrives, as a well-behaved server does.
        conn.socket.end();
      },
      async (s) => {
        const reply = await s.send(upload('POST', '/upload', 8 * 1024 * 1024), { stopOnResponse: true, idleMs: 3000 });
        assertComplete(reply, 413, 'too large');
        assert.ok(reply.headAt < 2000, `413 after ${reply.headAt} ms`);
      },
    ),
  );

  eachVariant('a 413 before reading an 8 MB upload, then a reset 50 ms later: the client still gets the 413', (variant) =>
    scene(
      variant,
      async (conn) => {
        conn.write(TOO_LARGE);
        await delay(50);
        conn.socket.resetAndDestroy();
      },
      async (s) => {
        const reply = await s.send(upload('PUT', '/upload', 8 * 1024 * 1024), { stopOnResponse: true, idleMs: 3000 });
        assertComplete(reply, 413, 'too large');
        assert.equal(s.backend.requests.length, 1, 'an answered request is not retried');
      },
    ),
  );

  eachVariant('a 413 on a keep-alive connection while the upload keeps flowing: the client gets the 413', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write('HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\ntoo large');
      },
      async (s) => {
        const reply = await s.send(upload('POST', '/upload', 2 * 1024 * 1024), { idleMs: 3000 });
        assertComplete(reply, 413, 'too large');
      },
    ),
  );

  for (const [method, size] of [
    ['POST', 4 * 1024 * 1024],
    ['PUT', 4 * 1024 * 1024],
    ['PUT', 48 * 1024],
  ] as const) {
    eachVariant(`a reset after 16 KiB of a ${size / 1024} KiB ${method} upload: 502 or a cut connection, no crash`, (variant) =>
      scene(
        variant,
        (conn, req) => {
          req.on('data', () => {
            if (req.received >= 16 * 1024 && !conn.socket.destroyed) conn.socket.resetAndDestroy();
          });
        },
        async (s) => {
          const reply = await s.send(upload(method, '/upload', size), { stopOnResponse: true, idleMs: 3000 });
          assertErrorOrCut(reply, 502);
          assert.ok(reply.elapsed < 2500, describeReply(reply));
          // A body that could be kept (below retry.maxBodyBytes) is replayed: on the other target, then
          // (a reset, with back-off on) on either again, up to retry.retries and then within
          // retry.tryDuration; a larger one is not.
          // Past the 2 retries, a reset keeps being tried every 100 ms within retry.tryDuration (1 s).
          const replayed = variant.retries && method === 'PUT' && size <= 64 * 1024;
          const attempts = s.backend.requests.filter((r) => r.url === '/upload').length;
          if (replayed) assert.ok(attempts >= 3 && attempts <= 13, `${attempts} attempts: the retries, then tries within tryDuration`);
          else assert.equal(attempts, 1);
        },
      ),
    );
  }
});
