import assert from 'node:assert/strict';
import http from 'node:http';
import http2, { type ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { describe, test } from 'node:test';
import { loadBalance } from 'proxy-balancer';
import { data, rstStream } from './abuse/h2-frames.js';
import { closeAll, delay, request, waitFor } from './helpers.js';
import { echo, front, h2request, h2upstream, ok200, rawUpstream } from './http2-upstream.js';

// Bodies through the HTTP/2 engine: backpressure both ways, a cut upstream never passed off as a
// complete response, a client's cancel reaching the upstream stream at once.

const INTERNAL_ERROR = 0x2;
const MB = 1024 * 1024;

describe('HTTP/2 upstream bodies', () => {
  test('a client that stops reading stops the upstream body (bounded by flow control), and reading again gets it all', async () => {
    const total = 64 * MB;
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const upstream = await h2upstream((stream) => {
      stream.respond({ ':status': 200, 'content-length': String(total) });
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!stream.write(chunk)) {
            stream.once('drain', pump);
            return;
          }
        }
        stream.end();
      };
      pump();
    });
    const lb = loadBalance({ targets: [upstream.url] });
    const server = await front(lb);
    const socket = net.connect(server.port, '127.0.0.1');
    try {
      socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.pause();
      await delay(1000);
      const whilePaused = sent;
      await delay(300);
      assert.equal(sent, whilePaused, 'the upstream is held still');
      assert.ok(whilePaused < 16 * MB, `sent ${whilePaused} bytes of ${total} to a client that reads nothing`);
      let received = 0;
      socket.on('data', (c: Buffer) => (received += c.length));
      socket.resume();
      await waitFor(() => received >= total, 20_000);
      assert.ok(received >= total);
    } finally {
      socket.destroy();
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('an upstream that stops reading stops the client upload (bounded by flow control)', async () => {
    const held: ServerHttp2Stream[] = [];
    const upstream = await h2upstream((stream) => {
      // Reads nothing: no WINDOW_UPDATE goes back.
      held.push(stream);
    });
    const lb = loadBalance({ targets: [upstream.url], proxyTimeout: 0 });
    const server = await front(lb);
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    const total = 64 * MB;
    let written = 0;
    let stopped = false;
    try {
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 'y');
      const pump = (): void => {
        while (!stopped && written < total) {
          written += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
      await delay(1000);
      const accepted = written;
      await delay(300);
      assert.equal(written, accepted, 'the client upload is held still');
      assert.ok(accepted < 24 * MB, `the balancer took ${accepted} bytes of ${total} for an upstream that reads nothing`);
      assert.equal(held.length, 1);
    } finally {
      stopped = true;
      socket.destroy();
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('an upstream stream reset mid-body cuts an HTTP/1.1 client: no terminating chunk', async () => {
    const upstream = await rawUpstream((id) => [ok200(id), data(id, 'partial'), rstStream(id, INTERNAL_ERROR)]);
    const lb = loadBalance({ targets: [upstream.url], outlierDetection: false });
    const server = await front(lb);
    try {
      const outcome = await new Promise<{ complete: boolean; body: string; error?: string }>((resolve) => {
        const req = http.get(`${server.url}/`, { agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ complete: res.complete, body }));
          res.on('error', (err) => resolve({ complete: res.complete, body, error: err.message }));
        });
        req.on('error', (err) => resolve({ complete: false, body: '', error: err.message }));
      });
      assert.equal(outcome.complete, false);
      assert.equal(outcome.body, 'partial');
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('an upstream stream reset mid-body resets the HTTP/2 client stream', async () => {
    const upstream = await rawUpstream((id) => [ok200(id), data(id, 'partial'), rstStream(id, INTERNAL_ERROR)]);
    const lb = loadBalance({ targets: [upstream.url], outlierDetection: false });
    const server = await front(lb, true);
    const client = http2.connect(server.url);
    client.on('error', () => {});
    try {
      await assert.rejects(h2request(client, { ':path': '/' }));
    } finally {
      client.close();
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('an upstream connection cut mid-body is a cut too, not a complete response', async () => {
    const upstream = await h2upstream((stream, _headers, self) => {
      stream.respond({ ':status': 200 });
      stream.write('partial', () => setTimeout(() => self.sockets.forEach((s) => s.destroy()), 20));
    });
    const lb = loadBalance({ targets: [upstream.url], outlierDetection: false });
    const server = await front(lb);
    try {
      await assert.rejects(request(`${server.url}/`), /aborted|socket hang up/);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  for (const client of ['HTTP/1.1', 'HTTP/2'] as const) {
    test(`a ${client} client's cancel resets the upstream stream at once (CANCEL)`, async () => {
      const closed: number[] = [];
      const upstream = await h2upstream((stream) => {
        stream.respond({ ':status': 200 });
        stream.write('first bytes');
        stream.on('close', () => closed.push(stream.rstCode ?? -1));
      });
      const lb = loadBalance({ targets: [upstream.url] });
      const server = await front(lb, client === 'HTTP/2');
      try {
        if (client === 'HTTP/1.1') {
          await new Promise<void>((resolve) => {
            const req = http.get(`${server.url}/`, { agent: false }, (res) => res.once('data', () => req.destroy()));
            req.on('error', () => {});
            req.on('close', () => resolve());
          });
        } else {
          const session = http2.connect(server.url);
          session.on('error', () => {});
          const stream = session.request({ ':path': '/' });
          stream.on('error', () => {});
          await new Promise<void>((resolve) => stream.once('data', () => resolve()));
          stream.close(http2.constants.NGHTTP2_CANCEL);
          await waitFor(() => closed.length === 1);
          session.close();
        }
        const started = Date.now();
        await waitFor(() => closed.length === 1);
        assert.deepEqual(closed, [http2.constants.NGHTTP2_CANCEL]);
        assert.ok(Date.now() - started < 1000);
      } finally {
        await server.close();
        await lb.close();
        await closeAll(upstream);
      }
    });
  }

  test('on.proxyReq may edit the headers before the stream opens', async () => {
    const upstream = await h2upstream(echo('a'));
    const lb = loadBalance({
      targets: [upstream.url],
      on: {
        proxyReq: (proxyReq) => {
          proxyReq.setHeader('x-added', 'by hook');
          proxyReq.removeHeader('x-removed');
        },
      },
    });
    const server = await front(lb);
    try {
      const seen = JSON.parse((await request(`${server.url}/`, { headers: { 'x-removed': 'no' } })).body);
      assert.equal(seen.headers['x-added'], 'by hook');
      assert.equal(seen.headers['x-removed'], undefined);
    } finally {
      await server.close();
      await lb.close();
      await closeAll(upstream);
    }
  });

  test('retry.perTryTimeout abandons a silent h2 target for another', async () => {
    const silent = await h2upstream(() => {});
    const well = await h2upstream(echo('well'));
    const lb = loadBalance({ targets: [silent.url, well.url], retry: { perTryTimeout: 100 }, outlierDetection: false });
    const server = await front(lb);
    try {
      for (let i = 0; i < 2; i++) assert.equal((await request(`${server.url}/`)).headers['x-backend'], 'well');
    } finally {
      await server.close();
      await lb.close();
      await closeAll(silent, well);
    }
  });
});
