import assert from 'node:assert/strict';
import http from 'node:http';
import { describe } from 'node:test';
import { delay } from '../helpers.js';
import { assertComplete, describeReply, get } from './harness.js';
import { header } from './http1.js';
import { eachVariant, scene } from './scenario.js';

const LINK = '</style.css>; rel=preload; as=style';
const FINAL = 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n<p>hi</p>';

describe('interim (1xx) responses', () => {
  eachVariant('103 Early Hints reach the client with their Link before the final response, and are never stored as the response', (variant) =>
    scene(
      variant,
      async (conn) => {
        conn.write(`HTTP/1.1 103 Early Hints\r\nLink: ${LINK}\r\n\r\n`);
        await delay(150);
        conn.write(FINAL);
      },
      (s) =>
        s
          .check(
            get('/hints'),
            (reply, attempt) => {
              const final = assertComplete(reply, 200, '<p>hi</p>');
              if (attempt === 2 && header(final, 'cache-status')?.startsWith('proxy-balancer; hit')) {
                assert.deepEqual(reply.interim, [], 'a hit replays no interim response');
                return;
              }
              assert.deepEqual(
                reply.interim.map((m) => m.status),
                [103],
                describeReply(reply),
              );
              assert.equal(header(reply.interim[0]!, 'link'), LINK);
              // Relayed as it came, not held back until the final response.
              assert.ok(reply.firstByteAt < reply.headAt - 80, `103 at ${reply.firstByteAt} ms, final head at ${reply.headAt} ms`);
            },
            { mayBeStored: true },
          )
          .then(() => {}),
    ),
  );

  eachVariant('103 seen through http.request: the information event carries the Link, then the 200', (variant) =>
    scene(
      variant,
      async (conn) => {
        conn.write(`HTTP/1.1 103 Early Hints\r\nLink: ${LINK}\r\n\r\n`);
        await delay(50);
        conn.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      },
      async (s) => {
        const seen: string[] = [];
        const body = await new Promise<string>((resolve, reject) => {
          const req = http.get(`http://127.0.0.1:${s.server.port}/hints-info`, { agent: false }, (res) => {
            seen.push(String(res.statusCode));
            let text = '';
            res.on('data', (c: Buffer) => (text += c));
            res.on('end', () => resolve(text));
          });
          req.on('information', (info) => seen.push(`${info.statusCode} ${String(info.headers.link)}`));
          req.on('error', reject);
        });
        assert.deepEqual(seen, [`103 ${LINK}`, '200']);
        assert.equal(body, 'ok');
      },
    ),
  );

  eachVariant('two 103s and a 102 Processing are all relayed in order before the final response', (variant) =>
    scene(
      variant,
      async (conn) => {
        conn.write('HTTP/1.1 102 Processing\r\n\r\n');
        await delay(30);
        conn.write(`HTTP/1.1 103 Early Hints\r\nLink: ${LINK}\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload; as=script\r\n\r\n`);
        await delay(30);
        conn.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone');
      },
      async (s) => {
        const reply = await s.send(get('/several-interim'));
        assertComplete(reply, 200, 'done');
        assert.deepEqual(
          reply.interim.map((m) => `${m.status} ${header(m, 'link') ?? ''}`),
          ['102 ', `103 ${LINK}`, '103 </app.js>; rel=preload; as=script'],
          describeReply(reply),
        );
      },
    ),
  );

  const upload = (extra = ''): [string, string] => [
    `POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nExpect: 100-continue\r\n${extra}\r\n`,
    'hello world',
  ];

  eachVariant('Expect: 100-continue reaches the backend, which answers 100 itself; the client sends the body only then', (variant) =>
    scene(
      variant,
      async (conn, req) => {
        await delay(200);
        if (req.headers.expect?.toLowerCase() === '100-continue') conn.write('HTTP/1.1 100 Continue\r\n\r\n');
        await req.waitForBody();
        const body = req.body.toString('latin1');
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length + 5}\r\n\r\ngot: ${body}`);
      },
      async (s) => {
        const reply = await s.send(upload(), { expectTimeout: 3000 });
        assertComplete(reply, 200, 'got: hello world');
        assert.equal(s.backend.requests[0]!.headers.expect, '100-continue', 'the backend was asked');
        assert.deepEqual(
          reply.interim.map((m) => m.status),
          [100],
        );
        // The 100 came from the backend (after its 200 ms), not from the balancer's own server.
        assert.ok(reply.firstByteAt >= 180, `100 Continue after ${reply.firstByteAt} ms`);
        assert.ok(reply.elapsed < 2000, `done after ${reply.elapsed} ms`);
      },
      { checkContinue: true },
    ),
  );

  eachVariant('Expect: 100-continue without a checkContinue listener: Node answers 100 at once, and the body reaches the backend without Expect', (variant) =>
    scene(
      variant,
      async (conn, req) => {
        await req.waitForBody();
        const body = req.body.toString('latin1');
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length + 5}\r\n\r\ngot: ${body}`);
      },
      async (s) => {
        const reply = await s.send(upload(), { expectTimeout: 3000 });
        assertComplete(reply, 200, 'got: hello world');
        assert.equal(s.backend.requests[0]!.headers.expect, undefined, 'the balancer accepted the body, so the backend is not asked');
        assert.deepEqual(
          reply.interim.map((m) => m.status),
          [100],
        );
      },
    ),
  );

  for (const [status, text] of [
    [417, 'Expectation Failed'],
    [413, 'Payload Too Large'],
  ] as const) {
    eachVariant(`Expect: 100-continue refused by the backend with ${status} without reading: the client gets the ${status} and sends no body`, (variant) =>
      scene(
        variant,
        (conn) => {
          conn.write(`HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nrefused`);
        },
        async (s) => {
          const reply = await s.send(upload(), { expectTimeout: 3000, stopOnResponse: true, idleMs: 3000 });
          assertComplete(reply, status, 'refused');
          assert.deepEqual(reply.interim, [], 'no 100 Continue: the backend refused');
          assert.ok(reply.elapsed < 1500, `answered after ${reply.elapsed} ms`);
          assert.equal(s.backend.requests[0]!.headers.expect, '100-continue', 'the backend decided');
          assert.equal(s.backend.requests[0]!.received, 0, 'no body byte reached the backend');
        },
        { checkContinue: true },
      ),
    );
  }

  eachVariant('Expect: 100-continue to a backend that ignores it: the client sends its body after waiting, and gets the answer (no deadlock)', (variant) =>
    scene(
      variant,
      async (conn, req) => {
        await req.waitForBody();
        const body = req.body.toString('latin1');
        conn.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length + 5}\r\n\r\ngot: ${body}`);
      },
      async (s) => {
        const reply = await s.send(upload(), { expectTimeout: 1000, idleMs: 3000 });
        assertComplete(reply, 200, 'got: hello world');
        assert.ok(reply.elapsed < 2500, `answered after ${reply.elapsed} ms`);
      },
    ),
  );
});
