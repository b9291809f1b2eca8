import assert from 'node:assert/strict';
import { delay } from '../helpers.js';
import { describeReply, get, type RawConnection, type RawRequest } from './harness.js';
import { describe, eachVariant, scene } from './scenario.js';

// A backend that writes more than the response it was asked for on a keep-alive connection: a
// second response, bytes after a Content-Length body, a body after the head of a HEAD response,
// in the same write or once the connection is back in the pool. The next request sent through the
// pool must get its own answer (fuzz seed 24 found a client given a smuggled response). Extra bytes
// that arrive after the next request took the connection cannot be told from its answer by any
// proxy: the cases wait until the stray bytes were written before sending the next request.

const STRAY = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nstray answer';

function answer(body: string): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

/** Resolves once the late stray bytes of the last misbehaving exchange were written. */
let strayWritten: Promise<void> = Promise.resolve();

/** Writes `bytes` 20 ms after the response, once the balancer has pooled the connection. */
function later(conn: RawConnection, bytes: string): void {
  // Nagle's algorithm would hold these few bytes until the response's ACK (up to 40 ms): they must
  // arrive while the connection is idle, not after the next request took it.
  conn.socket.setNoDelay(true);
  strayWritten = new Promise((resolve) => setTimeout(() => conn.socket.write(bytes, 'latin1', () => resolve()), 20));
}

/** `/own/<n>` answers `own <n>`; the other paths misbehave as named. */
function script(conn: RawConnection, req: RawRequest): void {
  const path = req.url;
  if (path.startsWith('/own/')) {
    conn.write(answer(`own ${path.slice(5)}`));
    return;
  }
  switch (path) {
    case '/second-response':
      // Both in one write: Node's parser reads the second while the first request is attached.
      conn.write(answer('first') + STRAY);
      return;
    case '/second-response-later':
      // The second arrives once the connection is back in the pool, idle.
      conn.write(answer('first'));
      later(conn, STRAY);
      return;
    case '/large-body-then-second-response':
      // A last body chunk over 16 KiB leaves the socket paused as it goes back to the pool (Node
      // pauses it when the response stream's buffer is full, and nothing reads on after its end):
      // what arrives then waits in the socket's buffer for the next request.
      conn.write(answer('x'.repeat(64 * 1024)));
      later(conn, STRAY);
      return;
    case '/large-body-and-second-response':
      // In one write: the parser may complete the first response while the second still waits in
      // the paused socket's buffer.
      conn.write(answer('x'.repeat(160 * 1024)) + STRAY);
      return;
    case '/bytes-after-body':
      conn.write(`${answer('first')}garbage after the body`);
      return;
    case '/bytes-after-body-later':
      conn.write(answer('first'));
      later(conn, 'garbage after the body');
      return;
    case '/head-with-body':
      // A HEAD response's Content-Length describes the GET's body: these bytes are not part of it.
      conn.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${STRAY.length}\r\n\r\n${STRAY}`);
      return;
    default:
      conn.write(answer('unexpected'));
  }
}

const MISBEHAVIOURS: ReadonlyArray<[string, string]> = [
  ['a second response in the same write', get('/second-response')],
  ['a second response once the connection is idle', get('/second-response-later')],
  ['a second response after a large body, once idle', get('/large-body-then-second-response')],
  ['a second response right after a large body', get('/large-body-and-second-response')],
  ['bytes after a Content-Length body', get('/bytes-after-body')],
  ['bytes after a Content-Length body, once idle', get('/bytes-after-body-later')],
  ['a body after the head of a HEAD response', 'HEAD /head-with-body HTTP/1.1\r\nHost: test.local\r\n\r\n'],
];

describe('upstream connections that received more than their response are not reused', () => {
  for (const [name, request] of MISBEHAVIOURS) {
    eachVariant(`${name}: the next request on the pool gets its own answer`, (variant) =>
      scene(
        variant,
        script,
        async (s) => {
          const wrong: string[] = [];
          for (let i = 0; i < 10; i++) {
            strayWritten = Promise.resolve();
            await s.send(request);
            // A late stray lands on the idle pooled connection before the next request is sent.
            await strayWritten;
            await delay(20);
            const reply = await s.send(get(`/own/${i}`));
            const body = reply.final?.body.toString('latin1');
            if (reply.final?.status !== 200 || body !== `own ${i}`) wrong.push(`/own/${i}: ${describeReply(reply)}`);
          }
          assert.deepEqual(wrong, [], `${wrong.length} of 10 requests got another answer than their own`);
        },
        { targets: 1 },
      ),
    );
  }
});
