import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { assertCut, assertGatewayError, describeReply, get, type ClientReply } from './harness.js';
import { eachVariant, scene, type Variant } from './scenario.js';

const PROXY_TIMEOUT = 400;
const SLACK = 700;
const options = { proxyTimeout: PROXY_TIMEOUT };

/** A GET that times out before its head is retried on the other target (which hangs too) when retries are on. */
function assertTimedWithin(reply: ClientReply, variant: Variant, attempts: number): void {
  const bound = attempts * PROXY_TIMEOUT + SLACK;
  assert.ok(reply.elapsed >= PROXY_TIMEOUT - 50, `answered after ${reply.elapsed} ms, before proxyTimeout: ${describeReply(reply)}`);
  assert.ok(reply.elapsed < bound, `answered after ${reply.elapsed} ms, over ${bound} ms (${variant.name}): ${describeReply(reply)}`);
}

describe('an upstream that hangs', () => {
  eachVariant('before the head (request read, nothing sent): 504 within proxyTimeout per attempt', (variant) =>
    scene(
      variant,
      () => {},
      (s) =>
        s
          .check(
            get('/hang'),
            (reply) => {
              assertGatewayError(reply, 504);
              assertTimedWithin(reply, variant, variant.retries ? 2 : 1);
            },
            { idleMs: 4000 },
          )
          .then(() => {}),
      { options },
    ),
  );

  eachVariant('in the middle of the head: 504 within proxyTimeout per attempt', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Half: ');
      },
      (s) =>
        s
          .check(
            get('/hang-mid-head'),
            (reply) => {
              assertGatewayError(reply, 504);
              assertTimedWithin(reply, variant, variant.retries ? 2 : 1);
            },
            { idleMs: 4000 },
          )
          .then(() => {}),
      { options },
    ),
  );

  eachVariant('after the head and part of a Content-Length body: the head, then a cut connection within proxyTimeout', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nCache-Control: max-age=60\r\n\r\n${'x'.repeat(100)}`);
      },
      (s) =>
        s
          .check(
            get('/hang-after-head'),
            (reply) => {
              assertCut(reply, 200);
              // Not retried: the head was relayed.
              assertTimedWithin(reply, variant, 1);
            },
            { idleMs: 4000 },
          )
          .then(() => {}),
      { options },
    ),
  );

  eachVariant('after the head of a chunked body: the head, then a cut connection within proxyTimeout', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n\r\n5\r\nhello\r\n');
      },
      (s) =>
        s
          .check(
            get('/hang-chunked'),
            (reply) => {
              assertCut(reply, 200);
              assertTimedWithin(reply, variant, 1);
            },
            { idleMs: 4000 },
          )
          .then(() => {}),
      { options },
    ),
  );

  eachVariant('a close-delimited body that stops flowing: a cut connection within proxyTimeout, not a clean end', (variant) =>
    scene(
      variant,
      (conn) => {
        conn.write(`HTTP/1.0 200 OK\r\nCache-Control: max-age=60\r\n\r\n${'y'.repeat(100)}`);
      },
      (s) =>
        s
          .check(
            get('/hang-close-delimited'),
            (reply) => {
              assertCut(reply, 200);
              assertTimedWithin(reply, variant, 1);
            },
            { idleMs: 4000 },
          )
          .then(() => {}),
      { options },
    ),
  );
});
