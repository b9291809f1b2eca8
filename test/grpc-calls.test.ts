import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type LoadBalancer, type LoadBalanceOptions, loadBalance } from 'proxy-balancer';
import { ECHO_SERVICE, type EchoClient, echoClient, failedCall, type GrpcServer, grpcServer, type H2cFront, h2cFront, unaryCall } from './grpc.js';
import { delay, waitFor } from './helpers.js';

// Real @grpc/grpc-js channels through the balancer (an h2c front) to real grpc-js servers (h2c
// targets): every call kind, deadlines, cancels, servers dying or draining, per-call balancing.

interface EchoServer extends GrpcServer {
  name: string;
  /** Unary calls served. */
  calls: number;
  /** Calls the server saw cancelled. */
  cancelled: number;
}

async function echoServer(name: string): Promise<EchoServer> {
  const state = { name, calls: 0, cancelled: 0 } as EchoServer;
  const watch = (call: { on(event: 'cancelled', listener: () => void): unknown }): void => {
    call.on('cancelled', () => state.cancelled++);
  };
  const server = await grpcServer([
    [
      ECHO_SERVICE,
      {
        unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          watch(call);
          state.calls++;
          const text = call.request.toString();
          if (text === 'fail') return callback({ code: grpc.status.NOT_FOUND, details: 'no such thing: 100% ✗' });
          const wait = text.startsWith('sleep:') ? Number(text.slice(6)) : 0;
          if (wait === 0) callback(null, Buffer.from(`${name}:${text}`));
          else setTimeout(() => callback(null, Buffer.from(`${name}:${text}`)), wait);
        },
        serverStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
          watch(call);
          const text = call.request.toString();
          // 'forever': one message every 10 ms until cancelled; else that many messages.
          if (text === 'forever') {
            let n = 0;
            const timer = setInterval(() => call.write(Buffer.from(`${name}:${n++}`)), 10);
            call.on('cancelled', () => clearInterval(timer));
            call.on('close', () => clearInterval(timer));
            return;
          }
          for (let i = 0; i < Number(text); i++) call.write(Buffer.from(`${name}:${i}`));
          call.end();
        },
        clientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          watch(call);
          const parts: string[] = [];
          call.on('data', (b: Buffer) => parts.push(b.toString()));
          call.on('end', () => callback(null, Buffer.from(`${name}:${parts.join(',')}`)));
        },
        bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
          watch(call);
          call.on('data', (b: Buffer) => call.write(Buffer.from(`${name}:${b.toString()}`)));
          call.on('end', () => call.end());
        },
      },
    ],
  ]);
  return Object.assign(state, server);
}

function collect(stream: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    stream.on('data', (b: Buffer) => got.push(b.toString()));
    stream.on('error', reject);
    stream.on('end', () => resolve(got));
  });
}

interface Setup {
  servers: EchoServer[];
  lb: LoadBalancer;
  front: H2cFront;
  client: EchoClient;
  close(): Promise<void>;
}

async function setup(count: number, options: Partial<LoadBalanceOptions> = {}): Promise<Setup> {
  const servers = await Promise.all(Array.from({ length: count }, (_, i) => echoServer(String.fromCharCode(97 + i))));
  const lb = loadBalance({ targets: servers.map((s) => `h2c://${s.address}`), ...options });
  const front = await h2cFront(lb);
  const client = echoClient(front.address);
  return {
    servers,
    lb,
    front,
    client,
    close: async () => {
      client.close();
      await lb.close();
      await front.close();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

describe('grpc-js through the balancer (h2c front, h2c targets)', () => {
  let t: Setup;
  before(async () => {
    t = await setup(3);
  });
  after(async () => {
    await t.close();
  });

  test('unary, server streaming, client streaming and bidi calls', async () => {
    assert.match((await unaryCall(t.client, 'ping')).toString(), /^[abc]:ping$/);
    const streamed = await collect(t.client.serverStream(Buffer.from('5')));
    assert.equal(streamed.length, 5);
    assert.match(streamed.join(' '), /^([abc]):0 \1:1 \1:2 \1:3 \1:4$/);

    const summed = await new Promise<string>((resolve, reject) => {
      const call = t.client.clientStream((err, reply) => (err ? reject(err) : resolve(reply!.toString())));
      for (const part of ['x', 'y', 'z']) call.write(Buffer.from(part));
      call.end();
    });
    assert.match(summed, /^[abc]:x,y,z$/);

    const bidi = t.client.bidi();
    const echoed = collect(bidi);
    for (let i = 0; i < 20; i++) {
      bidi.write(Buffer.from(`m${i}`));
      await delay(1);
    }
    bidi.end();
    const replies = await echoed;
    assert.equal(replies.length, 20);
    assert.ok(replies.every((r, i) => r.endsWith(`:m${i}`)));
  });

  test("one channel's 300 calls spread over the three servers, ~100 each", async () => {
    const before = t.servers.map((s) => s.calls);
    await Promise.all(Array.from({ length: 300 }, (_, i) => unaryCall(t.client, `n${i}`)));
    const spread = t.servers.map((s, i) => s.calls - before[i]!);
    assert.deepEqual(
      spread.map((n) => n >= 90 && n <= 110),
      [true, true, true],
      `spread ${spread}`,
    );
  });

  test('a deadline: DEADLINE_EXCEEDED within it plus a little, the server sees the call cancelled', async () => {
    const cancelled = t.servers.reduce((n, s) => n + s.cancelled, 0);
    const started = performance.now();
    const err = await failedCall(unaryCall(t.client, 'sleep:2000', { deadline: Date.now() + 200 }));
    const took = performance.now() - started;
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(took >= 190 && took < 600, `failed after ${took} ms`);
    await waitFor(() => t.servers.reduce((n, s) => n + s.cancelled, 0) === cancelled + 1);
    assert.equal(
      t.servers.reduce((n, s) => n + s.cancelled, 0),
      cancelled + 1,
    );
    await waitFor(() => t.lb.stats().inFlight === 0);
    assert.equal(t.lb.stats().inFlight, 0);
  });

  test("a server's error status (trailers-only) reaches the client as it was sent", async () => {
    const err = await failedCall(unaryCall(t.client, 'fail'));
    assert.equal(err.code, grpc.status.NOT_FOUND);
    assert.equal(err.details, 'no such thing: 100% ✗');
  });

  test('a client cancel reaches the server at once; nothing stays in flight', async () => {
    const cancelled = t.servers.reduce((n, s) => n + s.cancelled, 0);
    const call = t.client.serverStream(Buffer.from('forever'));
    let got = 0;
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => {
      if (++got === 3) call.cancel();
    });
    assert.equal((await ended).code, grpc.status.CANCELLED);
    const cancelAt = performance.now();
    await waitFor(() => t.servers.reduce((n, s) => n + s.cancelled, 0) === cancelled + 1);
    assert.ok(performance.now() - cancelAt < 500, 'the server saw the cancel');
    await waitFor(() => t.lb.stats().inFlight === 0);
    assert.equal(t.lb.stats().inFlight, 0);
    assert.deepEqual(
      t.lb.stats().targets.map((x) => x.inFlight),
      [0, 0, 0],
    );
  });
});

describe('grpc-js when servers fail', () => {
  test('a server killed mid-stream: the call fails UNAVAILABLE or INTERNAL, nothing crashes, the next calls succeed', async () => {
    const t = await setup(2, { strategy: { name: 'first-up', pick: (targets) => targets[0] } });
    try {
      const call = t.client.serverStream(Buffer.from('forever'));
      let got = 0;
      const failed = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
      call.on('data', () => {
        if (++got === 3) t.servers[0]!.server.forceShutdown();
      });
      const err = await failed;
      assert.ok([grpc.status.UNAVAILABLE, grpc.status.INTERNAL].includes(err.code), `code ${err.code}: ${err.details}`);
      for (let i = 0; i < 10; i++) assert.match((await unaryCall(t.client, `after${i}`)).toString(), /^b:/);
      await waitFor(() => t.lb.stats().inFlight === 0);
      assert.equal(t.lb.stats().inFlight, 0);
    } finally {
      await t.close();
    }
  });

  test('3 servers, one killed: every call of the channel keeps succeeding', async () => {
    const t = await setup(3, { outlierDetection: false });
    try {
      await Promise.all(Array.from({ length: 30 }, (_, i) => unaryCall(t.client, `warm${i}`)));
      t.servers[1]!.server.forceShutdown();
      const replies = await Promise.all(Array.from({ length: 90 }, (_, i) => unaryCall(t.client, `n${i}`)));
      assert.ok(replies.every((r) => /^[ac]:/.test(r.toString())));
      for (let i = 0; i < 30; i++) assert.match((await unaryCall(t.client, `seq${i}`)).toString(), /^[ac]:/);
    } finally {
      await t.close();
    }
  });

  test('a server draining (GOAWAY) under load: no call lost', async () => {
    const t = await setup(2);
    try {
      const calls = Array.from({ length: 200 }, (_, i) => unaryCall(t.client, `sleep:${5 + (i % 20)}`));
      await delay(20);
      const drained = new Promise<void>((resolve) => t.servers[0]!.server.tryShutdown(() => resolve()));
      const more = Array.from({ length: 100 }, (_, i) => unaryCall(t.client, `late${i}`));
      const settled = await Promise.allSettled([...calls, ...more]);
      const failures = settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason as grpc.ServiceError);
      assert.deepEqual(
        failures.map((f) => `${f.code} ${f.details}`),
        [],
      );
      await drained;
    } finally {
      await t.close();
    }
  });
});

describe('gRPC needs HTTP/2 from the client', () => {
  test('a grpc-js channel to an HTTP/1.1-only front fails UNAVAILABLE, and the front survives', async () => {
    const server = await echoServer('a');
    const lb = loadBalance({ targets: [`h2c://${server.address}`] });
    const front = http.createServer(lb);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const client = echoClient(`127.0.0.1:${(front.address() as AddressInfo).port}`);
    try {
      const err = await failedCall(unaryCall(client, 'x', { deadline: Date.now() + 2000 }));
      assert.ok([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(err.code), `code ${err.code}: ${err.details}`);
      assert.equal(server.calls, 0);
    } finally {
      client.close();
      await lb.close();
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await server.close();
    }
  });
});
