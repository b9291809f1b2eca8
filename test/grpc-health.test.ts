import assert from 'node:assert/strict';
import http2, { type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { grpcHealthCheck, loadBalance } from 'proxy-balancer';
import type { HealthProbe } from '../lib/health/checker.js';
import { Target } from '../lib/target.js';
import { ECHO_SERVICE, grpcServer } from './grpc.js';
import { deadPort, listen, selfSignedCert, waitFor } from './helpers.js';

// grpc.health.v1.Health/Check against real grpc-js servers implementing the service by hand
// (identity serializers, the two messages written and read as bytes here).

const identity = (b: Buffer): Buffer => b;
const HEALTH_SERVICE = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;

const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;

/** HealthCheckRequest.service, read by hand: empty message, or field 1 (tag 0x0a) with a one-byte length. */
function requestedService(message: Buffer): string {
  if (message.length === 0) return '';
  assert.equal(message[0], 0x0a);
  return message.subarray(2, 2 + message[1]!).toString('utf8');
}

/** A grpc-js server whose health service answers from `statuses` (a service not listed: NOT_FOUND, as grpc's own implementations do). */
async function healthServer(statuses: Map<string, number>) {
  const asked: string[] = [];
  const server = await grpcServer([
    [
      HEALTH_SERVICE,
      {
        check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const service = requestedService(call.request);
          asked.push(service);
          const status = statuses.get(service);
          if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          else callback(null, status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status]));
        },
      },
    ],
  ]);
  return { ...server, asked, statuses };
}

function target(url: string): Target {
  return new Target(new URL(url), 1);
}

async function run(check: HealthProbe, url: string, signal = new AbortController().signal): Promise<string> {
  try {
    return (await check(target(url), signal)) ? 'ok' : 'false';
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return code ?? message;
  }
}

describe('grpcHealthCheck()', () => {
  test('SERVING passes; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN and a non-zero grpc-status fail, named', async () => {
    const server = await healthServer(
      new Map([
        ['', SERVING],
        ['svc.Serving', SERVING],
        ['svc.Down', NOT_SERVING],
        ['svc.Unknown', 0],
        ['svc.Gone', SERVICE_UNKNOWN],
      ]),
    );
    const url = `http://${server.address}`;
    try {
      assert.equal(await run(grpcHealthCheck().check, url), 'ok');
      assert.equal(await run(grpcHealthCheck({ service: 'svc.Serving' }).check, url), 'ok');
      assert.equal(await run(grpcHealthCheck({ service: 'svc.Down' }).check, url), 'NOT_SERVING');
      assert.equal(await run(grpcHealthCheck({ service: 'svc.Unknown' }).check, url), 'UNKNOWN');
      assert.equal(await run(grpcHealthCheck({ service: 'svc.Gone' }).check, url), 'SERVICE_UNKNOWN');
      assert.equal(await run(grpcHealthCheck({ service: 'svc.Other' }).check, url), 'grpc-status 5');
      assert.deepEqual(server.asked, ['', 'svc.Serving', 'svc.Down', 'svc.Unknown', 'svc.Gone', 'svc.Other']);
    } finally {
      await server.close();
    }
  });

  test('a server without the health service (UNIMPLEMENTED), a refused connect, a silent server, a plain HTTP/1.1 server: failures', async () => {
    const echoOnly = await grpcServer([[ECHO_SERVICE, {}]]);
    const silent = http2.createServer(() => {});
    const sessions = new Set<ServerHttp2Session>();
    silent.on('session', (s) => sessions.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      assert.equal(await run(grpcHealthCheck().check, `http://${echoOnly.address}`), 'grpc-status 12');
      assert.equal(await run(grpcHealthCheck().check, `http://127.0.0.1:${await deadPort()}`), 'ECONNREFUSED');
      assert.equal(await run(grpcHealthCheck().check, `http://127.0.0.1:${silentPort}`, AbortSignal.timeout(100)), 'aborted');
      await waitFor(() => [...sessions].every((s) => s.closed || s.destroyed), 1000);
      const http1 = await listen((_req, res) => res.end('ok'));
      assert.notEqual(await run(grpcHealthCheck().check, http1.url, AbortSignal.timeout(1000)), 'ok');
      await http1.close();
    } finally {
      await echoOnly.close();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('TLS targets (https:) over ALPN h2: the certificate verified unless told otherwise', async () => {
    const cert = selfSignedCert();
    const server = http2.createSecureServer(cert, (req, res) => {
      assert.equal(req.url, '/grpc.health.v1.Health/Check');
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': '0' });
        res.end(Buffer.from([0, 0, 0, 0, 2, 0x08, SERVING]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://localhost:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal(await run(grpcHealthCheck({ ca: cert.cert }).check, url), 'ok');
      assert.equal(await run(grpcHealthCheck({ rejectUnauthorized: false }).check, url), 'ok');
      assert.equal(await run(grpcHealthCheck().check, url), 'DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('invalid options throw a TypeError naming them', () => {
    assert.throws(() => grpcHealthCheck({ service: 5 as never }), { name: 'TypeError', message: /grpcHealthCheck: options\.service must be a string/ });
    assert.throws(() => grpcHealthCheck({ servise: 'x' } as never), { name: 'TypeError', message: /servise/ });
    assert.throws(() => grpcHealthCheck({ interval: -1 }), { name: 'TypeError', message: /grpcHealthCheck: options\.interval/ });
    assert.throws(() => grpcHealthCheck({ ca: 5 as never }), { name: 'TypeError', message: /grpcHealthCheck: options\.ca/ });
    assert.throws(() => loadBalance({ targets: ['http://127.0.0.1:1'], healthCheck: grpcHealthCheck as never }), {
      name: 'TypeError',
      message: /grpcHealthCheck\(\)/,
    });
  });

  test('in a balancer: a target going NOT_SERVING is taken down and comes back; no check runs after lb.close()', async () => {
    const a = await healthServer(new Map([['', SERVING]]));
    const b = await healthServer(new Map([['', SERVING]]));
    const lb = loadBalance({
      targets: [`http://${a.address}`, `http://${b.address}`],
      healthCheck: grpcHealthCheck({ interval: 30, timeout: 500, jitter: 0, healthyThreshold: 1, unhealthyThreshold: 1 }),
    });
    try {
      await lb.firstHealthCheck();
      assert.deepEqual(
        lb.stats().targets.map((t) => t.state),
        ['up', 'up'],
      );
      b.statuses.set('', NOT_SERVING);
      await waitFor(() => lb.stats().targets[1]!.state === 'down');
      assert.equal(lb.stats().targets[1]!.state, 'down');
      assert.equal(lb.stats().targets[1]!.lastCheck?.detail, 'NOT_SERVING');
      b.statuses.set('', SERVING);
      await waitFor(() => lb.stats().targets[1]!.state === 'up');
      assert.equal(lb.stats().targets[1]!.state, 'up');
    } finally {
      await lb.close();
      const asked = a.asked.length;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(a.asked.length, asked, 'no check after close');
      await a.close();
      await b.close();
    }
  });
});
