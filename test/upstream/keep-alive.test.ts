import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe } from 'node:test';
import { delay } from '../helpers.js';
import { describeReply, get } from './harness.js';
import { eachVariant, scene } from './scenario.js';

/**
 * A keep-alive backend that closes a connection once it has been idle `idleMs` (as Node's
 * keepAliveTimeout does: the socket is destroyed, so a request crossing the close gets a reset).
 * `announce` adds a `Keep-Alive: timeout=<s>` field. Records how long each reused connection had
 * been idle when a request arrived on it.
 */
function idleClosingScript(idleMs: number, announce?: number) {
  const timers = new WeakMap<Socket, NodeJS.Timeout>();
  const idleSince = new WeakMap<Socket, number>();
  const reusedAfter: number[] = [];
  const script = (conn: { socket: Socket; write(data: string): boolean }, req: { method: string }): void => {
    const socket = conn.socket;
    clearTimeout(timers.get(socket));
    const since = idleSince.get(socket);
    if (since !== undefined) reusedAfter.push(Date.now() - since);
    const keepAlive = announce === undefined ? '' : `Keep-Alive: timeout=${announce}\r\n`;
    conn.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${keepAlive}Content-Length: 2\r\n\r\n${req.method === 'HEAD' ? '' : 'ka'}`);
    idleSince.set(socket, Date.now());
    timers.set(
      socket,
      setTimeout(() => socket.destroy(), idleMs),
    );
  };
  return { script, reusedAfter };
}

describe('upstream keep-alive connections', () => {
  eachVariant(
    'sockets the backend closes at its idle timeout while the balancer reuses them: idempotent requests never get a 502',
    (variant) => {
      const { script, reusedAfter } = idleClosingScript(100);
      return scene(
        variant,
        script,
        async (s) => {
          const failures: string[] = [];
          // Gaps from 80 to 120 ms around the backend's 100 ms: some requests cross the close.
          for (let gap = 80; gap <= 120; gap += 2) {
            for (const method of ['GET', 'HEAD']) {
              const reply = await s.send(`${method} /ka HTTP/1.1\r\nHost: test.local\r\n\r\n`);
              if (reply.final?.status !== 200 || !reply.final.complete || (method === 'GET' && reply.final.body.toString() !== 'ka'))
                failures.push(`${method} after ${gap} ms: ${describeReply(reply)}`);
            }
            await delay(gap);
          }
          assert.deepEqual(failures, [], `${failures.length} failed requests`);
          assert.ok(reusedAfter.length > 10, `connections were reused (${reusedAfter.length} times)`);
        },
        { targets: 1 },
      );
    },
    (variant) => variant.retries,
  );

  eachVariant(
    'an upstream Keep-Alive: timeout=1 is honoured: a connection idle for longer is not reused',
    (variant) => {
      // The backend keeps connections 5 s, longer than it announces, so a reuse would be visible (not a reset).
      const { script, reusedAfter } = idleClosingScript(5000, 1);
      return scene(
        variant,
        script,
        async (s) => {
          for (let i = 0; i < 3; i++) {
            const reply = await s.send(get('/ka-timeout'));
            assert.equal(reply.final?.status, 200, describeReply(reply));
            if (i < 2) await delay(1300);
          }
          assert.deepEqual(
            reusedAfter.filter((idle) => idle >= 1000),
            [],
            'connections reused after the announced 1 s',
          );
          assert.equal(s.backend.resets, 0, 'the backend saw no reset');
        },
        { targets: 1 },
      );
    },
    (variant) => variant.retries,
  );

  eachVariant(
    'an upstream Keep-Alive: timeout=1 from a backend that closes at exactly 1 s: requests around it never get a 502 and the backend sees no reset',
    (variant) => {
      const { script } = idleClosingScript(1000, 1);
      return scene(
        variant,
        script,
        async (s) => {
          const failures: string[] = [];
          for (const gap of [960, 990, 1000, 1010]) {
            const reply = await s.send(get('/ka-exact'));
            if (reply.final?.status !== 200) failures.push(`after ${gap} ms: ${describeReply(reply)}`);
            await delay(gap);
          }
          assert.deepEqual(failures, []);
          assert.equal(s.backend.resets, 0, 'the backend saw no reset');
        },
        { targets: 1 },
      );
    },
    (variant) => variant.retries,
  );
});
