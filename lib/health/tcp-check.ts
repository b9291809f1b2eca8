import net from 'node:net';
import { describeConnectError } from '../proxy/connect-error.js';
import { LOOPBACK_CONNECT } from '../proxy/loopback.js';
import type { Target } from '../target.js';
import type { HealthCheckSchedule, HealthChecker } from './checker.js';
import { invalidOption, markFactory, optionsObject } from '../validate.js';
import { validateSchedule } from './monitor.js';

export interface TcpHealthCheckOptions extends HealthCheckSchedule {
  /** Bytes written once connected (a string is sent as UTF-8). Without `expect`, the check passes once they are written. */
  send?: string | Buffer;
  /** A substring or pattern the target's reply must contain (first 64 KiB, decoded as UTF-8) before `timeout`. */
  expect?: string | RegExp;
}

const PREFIX = 'tcpHealthCheck: options';
/** Enough for any banner or greeting; past this the reply is judged a mismatch rather than buffered. */
const MAX_REPLY = 64 * 1024;
const KNOWN: readonly string[] = ['interval', 'timeout', 'healthyThreshold', 'unhealthyThreshold', 'jitter', 'initialState', 'send', 'expect'];

interface TcpProbeConfig {
  send: Buffer | undefined;
  expect: string | RegExp | undefined;
}

/** The target's host and port; URL keeps IPv6 literals bracketed, which net.connect does not accept. */
export function tcpAddress(target: Target): { host: string; port: number } {
  const { hostname, port, protocol } = target.url;
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return { host, port: port ? Number(port) : protocol === 'https:' ? 443 : 80 };
}

function replyMatches(reply: Buffer, expect: string | RegExp): boolean {
  const text = reply.toString('utf8');
  return typeof expect === 'string' ? text.includes(expect) : expect.test(text);
}

/** Connects (and converses, when configured); the socket is destroyed however it ends. */
function probe(target: Target, signal: AbortSignal, config: TcpProbeConfig): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ ...LOOPBACK_CONNECT, ...tcpAddress(target), signal });
    let settled = false;
    let reply = Buffer.alloc(0);
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(describeConnectError(error));
      else resolve(true);
    };
    socket.on('error', finish);
    // Ending before the expected reply (or before connecting) is a failure, never a silent hang.
    socket.on('close', () => finish(new Error(config.expect ? 'expect mismatch' : 'closed')));
    socket.on('connect', () => {
      if (config.send) socket.write(config.send, () => config.expect || finish(undefined));
      else if (!config.expect) finish(undefined);
    });
    if (!config.expect) return;
    const expect = config.expect;
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (replyMatches(reply, expect)) finish(undefined);
      else if (reply.length >= MAX_REPLY) finish(new Error('expect mismatch'));
    });
  });
}

function configure(options: TcpHealthCheckOptions): TcpProbeConfig {
  const { send, expect } = options;
  if (send !== undefined && !((typeof send === 'string' || Buffer.isBuffer(send)) && send.length > 0)) {
    invalidOption(PREFIX, 'send', 'a non-empty string or Buffer', send);
  }
  if (expect !== undefined && !((typeof expect === 'string' && expect !== '') || expect instanceof RegExp)) {
    invalidOption(PREFIX, 'expect', 'a non-empty string or a RegExp', expect);
  }
  return {
    send: send === undefined ? undefined : Buffer.from(send),
    // Without g/y flags: `test()` on those is stateful and would alternate between pass and fail.
    expect: expect instanceof RegExp ? new RegExp(expect.source, expect.flags.replace(/[gy]/g, '')) : expect,
  };
}

/**
 * A TCP health check: passes once a connection to the target's host and port opens (default port
 * 80, or 443 for `https:`), or, with `send`/`expect`, once the expected reply arrives.
 */
export function tcpHealthCheck(options: TcpHealthCheckOptions = {}): HealthChecker {
  optionsObject(options, 'tcpHealthCheck', KNOWN);
  const schedule = validateSchedule(options, PREFIX);
  const config = configure(options);
  return { ...schedule, check: (target, signal) => probe(target, signal, config) };
}

markFactory(tcpHealthCheck, 'tcpHealthCheck()');
