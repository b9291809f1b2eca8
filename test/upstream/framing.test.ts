import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { delay } from '../helpers.js';
import { assertComplete, assertCut, assertErrorOrCut, assertGatewayError, get, NORMAL_BODY } from './harness.js';
import { eachVariant, scene } from './scenario.js';

// Every response below says it may be cached for a minute, so a cache that stored a broken one
// would show it on the second request.
const CACHEABLE = 'Cache-Control: max-age=60\r\n';

describe('body framing the upstream gets wrong', () => {
  eachVariant('a body longer than Content-Length: the client gets exactly Content-Length bytes, and the excess never reaches another request', (variant) =>
    scene(
      variant,
      (conn) => {
        // 10 declared, 36 sent: the excess is a whole second response, which must not answer anything.
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n${CACHEABLE}\r\n0123456789HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL`);
      },
      async (s) => {
        await s.check(get('/longer'), (reply) => assertComplete(reply, 200, '0123456789'), { mayBeStored: true });
        for (let i = 0; i < 4; i++) assertComplete(await s.send(get('/normal')), 200, NORMAL_BODY);
      },
    ),
  );

  eachVariant('a body longer than Content-Length whose excess is not HTTP: the client gets exactly Content-Length bytes', (variant) =>
    scene(
      variant,
      (conn) => {
        // The reproduction: Content-Length 10, then 36 bytes.
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n${CACHEABLE}\r\n${'z'.repeat(36)}`);
      },
      (s) => s.check(get('/longer-garbage'), (reply) => assertComplete(reply, 200, 'z'.repeat(10)), { mayBeStored: true }).then(() => {}),
    ),
  );

  eachVariant('excess bytes arriving after a complete response are not taken as the answer to the next request', (variant) =>
    scene(
      variant,
      async (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst`);
        await delay(30);
        conn.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL');
      },
      async (s) => {
        assertComplete(await s.send(get('/late-excess')), 200, 'first');
        await delay(60);
        for (let i = 0; i < 4; i++) assertComplete(await s.send(get('/normal')), 200, NORMAL_BODY);
      },
    ),
  );

  for (const [what, request, status] of [
    ['a HEAD response', 'HEAD /head-with-body HTTP/1.1\r\nHost: test.local\r\n\r\n', 200],
    ['a 204', 'GET /no-content-with-body HTTP/1.1\r\nHost: test.local\r\n\r\n', 204],
    ['a 304', 'GET /not-modified-with-body HTTP/1.1\r\nHost: test.local\r\nIf-None-Match: "v1"\r\n\r\n', 304],
  ] as const) {
    eachVariant(`body bytes after ${what} (which has none): the response is relayed complete without them`, (variant) =>
      scene(
        variant,
        (conn) => {
          const reason = status === 200 ? 'OK' : status === 204 ? 'No Content' : 'Not Modified';
          conn.write(`HTTP/1.1 ${status} ${reason}\r\nETag: "v1"\r\nContent-Length: 9\r\n\r\nleftovers`);
        },
        async (s) => {
          const reply = await s.send(request);
          const final = assertComplete(reply, status, '');
          assert.equal(reply.bytes.includes('leftovers'), false);
          assert.equal(final.status, status);
          for (let i = 0; i < 3; i++) assertComplete(await s.send(get('/normal')), 200, NORMAL_BODY);
        },
      ),
    );
  }

  eachVariant('excess bytes arriving while the connection serves the next request: that request gets its own response or 502, never the excess', (variant) =>
    scene(
      variant,
      async (conn, req) => {
        if (req.url === '/first') {
          conn.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst');
          await delay(40);
          conn.write('\x00\x01 junk that is not HTTP\r\n\r\n');
          return;
        }
        // The next request, on the reused connection: answered after the junk came.
        await delay(100);
        conn.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond');
      },
      async (s) => {
        for (let i = 0; i < 3; i++) {
          assertComplete(await s.send(get('/first')), 200, 'first');
          const next = await s.send(get('/second'));
          if (next.final?.status === 502) assertGatewayError(next, 502);
          else assertComplete(next, 200, 'second');
          await delay(150);
        }
      },
      { targets: 1 },
    ),
  );

  eachVariant('a body shorter than Content-Length, then FIN: the head, then a cut connection', (variant) =>
    scene(
      variant,
      async (conn) => {
        await conn.writeSlowly([`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n${CACHEABLE}\r\n`, 'x'.repeat(40)], 30);
        conn.socket.end();
      },
      (s) => s.check(get('/shorter'), (reply) => assertCut(reply, 200)).then(() => {}),
    ),
  );

  eachVariant('a body shorter than Content-Length, then a reset: the head, then a cut connection', (variant) =>
    scene(
      variant,
      async (conn) => {
        await conn.writeSlowly([`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n${CACHEABLE}\r\n`, 'x'.repeat(40)], 30);
        conn.socket.resetAndDestroy();
      },
      (s) => s.check(get('/shorter-reset'), (reply) => assertCut(reply, 200)).then(() => {}),
    ),
  );

  eachVariant('an invalid chunk size after a first chunk: the head and that chunk, then a cut connection without the last chunk', (variant) =>
    scene(
      variant,
      (conn) => conn.writeSlowly([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${CACHEABLE}\r\n5\r\nhello\r\n`, 'ZZ\r\nnot a chunk\r\n0\r\n\r\n'], 50),
      (s) =>
        s
          .check(get('/bad-chunk'), (reply) => {
            assertCut(reply, 200);
            assert.equal(reply.final!.body.toString(), 'hello');
          })
          .then(() => {}),
    ),
  );

  eachVariant('an invalid chunk size in the first read: 502, or a cut connection', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${CACHEABLE}\r\n5\r\nhello\r\nZZ\r\n`);
      },
      (s) => s.check(get('/bad-chunk-at-once'), (reply) => assertErrorOrCut(reply)).then(() => {}),
    ),
  );

  eachVariant('chunk data not followed by CRLF: a cut connection', (variant) =>
    scene(
      variant,
      (conn) => conn.writeSlowly([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${CACHEABLE}\r\n5\r\nhello\r\n`, '3\r\nabcXY0\r\n\r\n'], 50),
      (s) => s.check(get('/chunk-no-crlf'), (reply) => assertCut(reply, 200)).then(() => {}),
    ),
  );

  eachVariant('a chunked body cut before its last chunk (FIN): a cut connection', (variant) =>
    scene(
      variant,
      async (conn) => {
        await conn.writeSlowly([`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${CACHEABLE}\r\n5\r\nhello\r\n`, '10\r\nonly part'], 30);
        conn.socket.end();
      },
      (s) => s.check(get('/cut-chunked'), (reply) => assertCut(reply, 200)).then(() => {}),
    ),
  );

  eachVariant('Content-Length together with Transfer-Encoding: 502', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n${CACHEABLE}\r\n3\r\nabc\r\n0\r\n\r\n`);
      },
      (s) => s.check(get('/cl-te'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
    ),
  );

  eachVariant('conflicting Content-Lengths: 502', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n${CACHEABLE}\r\nabcdef`);
      },
      (s) => s.check(get('/two-lengths'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
    ),
  );

  eachVariant('a Content-Length that is not a number: 502', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n${CACHEABLE}\r\nabcde`);
      },
      (s) => s.check(get('/bad-length'), (reply) => assertGatewayError(reply, 502)).then(() => {}),
    ),
  );

  eachVariant('a close right after a Content-Length head: 502 if nothing was relayed, else a cut connection', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n${CACHEABLE}\r\n`);
        conn.socket.end();
      },
      (s) => s.check(get('/close-after-head'), (reply) => assertErrorOrCut(reply)).then(() => {}),
    ),
  );

  eachVariant('a close right after a chunked head: 502 if nothing was relayed, else a cut connection', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${CACHEABLE}\r\n`);
        conn.socket.end();
      },
      (s) => s.check(get('/close-after-chunked-head'), (reply) => assertErrorOrCut(reply)).then(() => {}),
    ),
  );

  eachVariant('a close right after a head without framing ends an empty close-delimited body: a complete empty 200', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nConnection: close\r\n${CACHEABLE}\r\n`);
        conn.socket.end();
      },
      (s) =>
        s
          .check(
            get('/empty-close-delimited'),
            (reply) => {
              const final = assertComplete(reply, 200, '');
              assert.notEqual(final.framing, 'close');
            },
            { mayBeStored: true },
          )
          .then(() => {}),
    ),
  );

  const BIG = Buffer.alloc(300 * 1024);
  for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7919) % 251;

  eachVariant('an HTTP/1.0 close-delimited body arrives whole and identical, framed for the HTTP/1.1 client', (variant) =>
    scene(
      variant,
      async (conn) => {
        const parts: Buffer[] = [Buffer.from(`HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n${CACHEABLE}\r\n`, 'latin1')];
        for (let offset = 0; offset < BIG.length; offset += 30 * 1024) parts.push(BIG.subarray(offset, offset + 30 * 1024));
        await conn.writeSlowly(parts, 3);
        conn.socket.end();
      },
      (s) =>
        s
          .check(
            get('/http10'),
            (reply) => {
              const final = assertComplete(reply, 200, BIG);
              assert.notEqual(final.framing, 'close', 'an HTTP/1.1 client must be able to see where the body ends');
            },
            { mayBeStored: true },
          )
          .then(() => {}),
    ),
  );

  eachVariant('an HTTP/1.1 close-delimited body (Connection: close, no length) arrives whole and identical', (variant) =>
    scene(
      variant,
      async (conn) => {
        await conn.writeSlowly([`HTTP/1.1 200 OK\r\nConnection: close\r\n${CACHEABLE}\r\n`, BIG.subarray(0, 100_000), BIG.subarray(100_000)], 5);
        conn.socket.end();
      },
      (s) => s.check(get('/http11-close'), (reply) => assertComplete(reply, 200, BIG), { mayBeStored: true }).then(() => {}),
    ),
  );

  eachVariant('a close-delimited body cut by a reset is not passed off as complete', (variant) =>
    scene(
      variant,
      async (conn) => {
        await conn.writeSlowly([`HTTP/1.0 200 OK\r\n${CACHEABLE}\r\n`, 'a'.repeat(5000), 'b'.repeat(5000)], 30);
        conn.socket.resetAndDestroy();
      },
      (s) => s.check(get('/close-delimited-reset'), (reply) => assertCut(reply, 200)).then(() => {}),
    ),
  );
});
