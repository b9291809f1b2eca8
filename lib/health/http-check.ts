import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { describeConnectError } from '../proxy/connect-error.js';
import { LOOPBACK_CONNECT } from '../proxy/loopback.js';
import type { Readable } from 'node:stream';
import type { Target } from '../target.js';
import { probeHttp2 } from './http2-probe.js';
import type { HealthCheckSchedule, HealthChecker } from './checker.js';
import { invalidOption, markFactory, optionsObject } from '../validate.js';
import { validateSchedule } from './monitor.js';
import { checkTlsOptions } from './check-tls.js';

export interface HttpHealthCheckOptions extends HealthCheckSchedule {
  /**
   * Path (and optional query) requested, appended to the target's own path like a proxied request:
   * target 'http://h:1/base' with path '/health' → GET http://h:1/base/health. Must start with '/';
   * default '/'.
   */
  path?: string;
  /** 'GET' (default) or 'HEAD'. */
  method?: 'GET' | 'HEAD';
  /** Status(es) that pass: a code, a list of codes, or a predicate; default 200–399. */
  expectStatus?: number | readonly number[] | ((status: number) => boolean);
  /** A substring or pattern the response body must contain (only its first 64 KiB are read); default none. */
  expectBody?: string | RegExp;
  /** Extra request headers; `user-agent: proxy-balancer-health-check` unless given here. */
  headers?: Readonly<Record<string, string>>;
  /** For `https:` targets: verify the certificate; default true. */
  rejectUnauthorized?: boolean;
  /** For `https:` targets: trusted CA certificate(s), PEM. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

const PREFIX = 'httpHealthCheck: options';
/** A health page larger than this is not a health page; stop reading instead of buffering it. */
const MAX_BODY = 64 * 1024;
const KNOWN: readonly string[] = [
  'interval',
  'timeout',
  'healthyThreshold',
  'unhealthyThreshold',
  'jitter',
  'initialState',
  'path',
  'method',
  'expectStatus',
  'expectBody',
  'headers',
  'rejectUnauthorized',
  'ca',
];

interface HttpProbeConfig {
  path: string;
  method: 'GET' | 'HEAD';
  statusOk: (status: number) => boolean;
  expectBody: string | RegExp | undefined;
  headers: Record<string, string>;
  tls: https.RequestOptions;
}

function defaultStatusOk(status: number): boolean {
  return status >= 200 && status <= 399;
}

function isStatusCode(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 100 && value <= 599;
}

function statusPredicate(expect: unknown): (status: number) => boolean {
  if (expect === undefined) return defaultStatusOk;
  if (typeof expect === 'function') return expect as (status: number) => boolean;
  if (isStatusCode(expect)) return (status) => status === expect;
  if (Array.isArray(expect) && expect.length > 0 && expect.every(isStatusCode)) {
    const codes = new Set<number>(expect);
    return (status) => codes.has(status);
  }
  return invalidOption(PREFIX, 'expectStatus', 'a status code 100–599, a non-empty array of them, or a function', expect);
}

/** Without g/y flags: `test()` on those is stateful and would alternate between pass and fail. */
function statelessPattern(pattern: RegExp): RegExp {
  return pattern.global || pattern.sticky ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')) : pattern;
}

function bodyMatcher(expect: unknown, method: string): string | RegExp | undefined {
  if (expect === undefined) return undefined;
  if (method === 'HEAD') invalidOption(PREFIX, 'expectBody', "unset with method 'HEAD' (a HEAD response has no body)", expect);
  if (typeof expect === 'string' && expect !== '') return expect;
  if (expect instanceof RegExp) return statelessPattern(expect);
  return invalidOption(PREFIX, 'expectBody', 'a non-empty string or a RegExp', expect);
}

function requestHeaders(headers: unknown): Record<string, string> {
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Array.isArray(headers))) {
    invalidOption(PREFIX, 'headers', 'an object of header names to string values', headers);
  }
  const result: Record<string, string> = { 'user-agent': 'proxy-balancer-health-check' };
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value !== 'string') invalidOption(PREFIX, `headers[${JSON.stringify(name)}]`, 'a string', value);
    try {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    } catch (error) {
      throw new TypeError(`${PREFIX}.headers has an invalid header ${JSON.stringify(name)}: ${(error as Error).message}`);
    }
    result[name.toLowerCase()] = value;
  }
  // A check must not hold a connection open between probes (nor leave one to the server's idle timeout).
  result.connection = 'close';
  return result;
}

function configure(options: HttpHealthCheckOptions): HttpProbeConfig {
  const { path = '/', method = 'GET' } = options;
  // No whitespace or control characters: http.request would throw on them at every probe.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (typeof path !== 'string' || !/^\/[^\s\x00-\x1f\x7f]*$/.test(path)) invalidOption(PREFIX, 'path', "a path starting with '/'", path);
  if (method !== 'GET' && method !== 'HEAD') invalidOption(PREFIX, 'method', "'GET' or 'HEAD'", method);
  return {
    path,
    method,
    statusOk: statusPredicate(options.expectStatus),
    expectBody: bodyMatcher(options.expectBody, method),
    headers: requestHeaders(options.headers),
    tls: checkTlsOptions(options, PREFIX),
  };
}

/** The checked URL: the target's path, then `path` (a target path's trailing slash is not doubled). */
export function healthCheckUrl(target: Target, path: string): URL {
  const url = new URL(target.url.href);
  const base = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  const query = path.indexOf('?');
  url.pathname = base + (query === -1 ? path : path.slice(0, query));
  url.search = query === -1 ? '' : path.slice(query);
  url.hash = '';
  return url;
}

function failure(detail: string): Error {
  return new Error(detail);
}

function bodyMatches(body: Buffer, expect: string | RegExp): boolean {
  const text = body.toString('utf8');
  return typeof expect === 'string' ? text.includes(expect) : expect.test(text);
}

/** One request on a fresh connection (an HTTP/2 one for an HTTP/2 target), destroyed however it ends. Resolves true, or rejects with a short reason. */
function probe(target: Target, signal: AbortSignal, config: HttpProbeConfig): Promise<boolean> {
  if (target.http2) {
    const url = healthCheckUrl(target, config.path);
    return probeHttp2(target, signal, { ...config, url, judge: (status, body, finish) => judge(status, body, config, finish) });
  }
  return new Promise((resolve, reject) => {
    const url = healthCheckUrl(target, config.path);
    const secure = url.protocol === 'https:';
    const options: https.RequestOptions = {
      ...LOOPBACK_CONNECT,
      method: config.method,
      headers: config.headers,
      agent: false,
      signal,
      ...(secure ? config.tls : {}),
    };
    let settled = false;
    const finish = (error: Error | undefined): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      if (error) reject(describeConnectError(error));
      else resolve(true);
    };
    const req = (secure ? https : http).request(url, options, (res: IncomingMessage) => judge(res.statusCode ?? 0, res, config, finish));
    req.on('error', finish);
    req.end();
  });
}

/** Passes on an expected status (and body): `finish` hears the verdict once. */
function judge(status: number, res: Readable, config: HttpProbeConfig, finish: (error: Error | undefined) => void): void {
  let passed: boolean;
  try {
    passed = config.statusOk(status);
  } catch (error) {
    // The user's predicate runs in an event handler: a throw there would crash the process.
    finish(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  if (!passed) return finish(failure(`status ${status}`));
  if (!config.expectBody) return finish(undefined);
  readBody(res, config.expectBody, finish);
}

/** Reads up to MAX_BODY bytes and reports whether `expect` is in them. */
function readBody(res: Readable, expect: string | RegExp, finish: (error: Error | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const judge = (): void => finish(bodyMatches(Buffer.concat(chunks), expect) ? undefined : failure('body mismatch'));
  res.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_BODY) {
      chunks[chunks.length - 1] = chunk.subarray(0, chunk.length - (size - MAX_BODY));
      judge();
    }
  });
  res.on('end', judge);
  res.on('error', finish);
  // Closed before 'end' (reset, abort): the body was cut short, so it cannot be judged.
  res.on('close', () => finish(failure('response aborted')));
}

/**
 * An HTTP(S) health check: requests `path` on each target on a fresh connection and passes on an
 * expected status (and body). Options are validated here; a TypeError names the bad one.
 */
export function httpHealthCheck(options: HttpHealthCheckOptions = {}): HealthChecker {
  optionsObject(options, 'httpHealthCheck', KNOWN);
  const schedule = validateSchedule(options, PREFIX);
  const config = configure(options);
  return { ...schedule, check: (target, signal) => probe(target, signal, config) };
}

markFactory(httpHealthCheck, 'httpHealthCheck()');
