import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import { HEALTH_CHECK_PATH, healthCheckRequest, SERVING, servingStatus, servingStatusName } from '../grpc/health-proto.js';
import { describeConnectError } from '../proxy/connect-error.js';
import { connectAuthority, connectOptions } from '../proxy/engines/http2/connect.js';
import type { Target } from '../target.js';
import { invalidOption, markFactory, optionsObject } from '../validate.js';
import type { HealthCheckSchedule, HealthChecker } from './checker.js';
import { type CheckTlsOptions, checkTlsOptions } from './check-tls.js';
import { validateSchedule } from './monitor.js';

export interface GrpcHealthCheckOptions extends HealthCheckSchedule, CheckTlsOptions {
  /** The service asked about (`HealthCheckRequest.service`); default '' (the server as a whole). */
  service?: string;
}

const PREFIX = 'grpcHealthCheck: options';
/** A HealthCheckResponse is a few bytes; a reply larger than this is not one. */
const MAX_REPLY = 64 * 1024;
const KNOWN: readonly string[] = [
  'interval',
  'timeout',
  'healthyThreshold',
  'unhealthyThreshold',
  'jitter',
  'initialState',
  'service',
  'rejectUnauthorized',
  'ca',
];
interface GrpcProbeConfig {
  request: Buffer;
  tls: ConnectionOptions;
}

/**
 * One Health/Check call on a fresh HTTP/2 session, closed however it ends. Resolves true when the
 * answer is SERVING with grpc-status 0; rejects with a short reason otherwise.
 */
function probe(target: Target, signal: AbortSignal, config: GrpcProbeConfig): Promise<boolean> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('aborted'));
      return;
    }
    let session: ClientHttp2Session | undefined;
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      session?.destroy();
      if (error) reject(describeConnectError(error));
      else resolve(true);
    };
    const onAbort = (): void => finish(new Error('aborted'));
    signal.addEventListener('abort', onAbort);
    try {
      // The HTTP/2 engine's own connect: h2c for `http:` targets, TLS with ALPN h2 and the target's name for `https:`.
      session = http2.connect(connectAuthority(target), connectOptions(target, config.tls));
    } catch (error) {
      finish(error as Error);
      return;
    }
    session.on('error', finish);
    session.on('close', () => finish(new Error('connection closed')));
    // The call starts once connected, so a failed connect or TLS handshake is reported as such.
    session.once('connect', (connected: ClientHttp2Session) => call(connected, target, config, finish));
  });
}

/** The Check call on a connected session; `finish` hears its verdict. */
function call(session: ClientHttp2Session, target: Target, config: GrpcProbeConfig, finish: (error: Error | undefined) => void): void {
  const stream = session.request({
    ':method': 'POST',
    ':path': HEALTH_CHECK_PATH,
    ':authority': target.host,
    'content-type': 'application/grpc',
    te: 'trailers',
    'user-agent': 'proxy-balancer-health-check',
  });
  let head: IncomingHttpHeaders = {};
  let trailers: IncomingHttpHeaders | undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('error', finish);
  stream.on('response', (headers) => (head = headers));
  stream.on('trailers', (headers) => (trailers = headers));
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_REPLY) finish(new Error('response too large'));
    else chunks.push(chunk);
  });
  stream.on('close', () => finish(verdict(head, trailers, Buffer.concat(chunks), stream.rstCode)));
  stream.end(config.request);
}

/** Undefined when the call passed, else why it failed. */
function verdict(head: IncomingHttpHeaders, trailers: IncomingHttpHeaders | undefined, body: Buffer, rstCode: number | undefined): Error | undefined {
  const status = Number(head[':status']);
  if (Number.isNaN(status)) return new Error(rstCode ? `stream reset (code ${rstCode})` : 'no response');
  if (status !== 200) return new Error(`status ${status}`);
  // Trailers-only (an error answered at once) carries grpc-status in the head.
  const grpcStatus = (trailers ?? head)['grpc-status'];
  if (grpcStatus === undefined) return new Error(rstCode ? `stream reset (code ${rstCode})` : 'no grpc-status');
  if (grpcStatus !== '0') return new Error(`grpc-status ${grpcStatus}`);
  const serving = servingStatus(body);
  if (typeof serving === 'string') return new Error(serving);
  return serving === SERVING ? undefined : new Error(servingStatusName(serving));
}

function configure(options: GrpcHealthCheckOptions): GrpcProbeConfig {
  const { service = '' } = options;
  if (typeof service !== 'string') invalidOption(PREFIX, 'service', "a string (a service name, or '' for the whole server)", service);
  return { request: healthCheckRequest(service), tls: checkTlsOptions(options, PREFIX) };
}

/**
 * A gRPC health check (grpc.health.v1.Health/Check, grpc's doc/health-checking.md): one call per
 * check on a fresh HTTP/2 connection, h2c for `http:` targets and TLS with ALPN for `https:`
 * ones. Passes on SERVING; NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN, a non-zero grpc-status or no
 * answer within `timeout` fail. Options are validated here; a TypeError names the bad one.
 */
export function grpcHealthCheck(options: GrpcHealthCheckOptions = {}): HealthChecker {
  optionsObject(options, 'grpcHealthCheck', KNOWN);
  const schedule = validateSchedule(options, PREFIX);
  const config = configure(options);
  return { ...schedule, check: (target, signal) => probe(target, signal, config) };
}

markFactory(grpcHealthCheck, 'grpcHealthCheck()');
