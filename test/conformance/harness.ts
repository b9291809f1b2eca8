/**
 * A conformance harness for shared HTTP caches, written for this project after reading the test
 * definitions of the HTTP cache-tests suite (github.com/http-tests/cache-tests): same idea (a
 * scripted origin, a client replaying numbered requests through the cache, checks on both sides),
 * our own code and case format. It runs in-process against any cache listening on a URL.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How a response is expected to have been produced. */
export type Expect =
  /** From the cache: the origin did not see this request. */
  | 'cached'
  /** From the origin: it saw this very request. */
  | 'not_cached'
  /** The origin saw a conditional request with If-None-Match (it answers 304 when it matches). */
  | 'etag_validated'
  /** The origin saw a conditional request with If-Modified-Since. */
  | 'lm_validated'
  /** Not the stored response (after an upstream failure where serving stale is forbidden). */
  | 'not_stale';

/** A header value: a string, or a number of seconds from the origin's now for date fields. */
export type Value = string | number;

export interface Step {
  method?: string;
  /** Path segment after the case's base path (`location_target`). */
  file?: string;
  query?: string;
  requestHeaders?: Array<[string, Value]>;
  requestBody?: string;
  /** The origin's answer: status (default 200), header fields, body (default the case id). */
  status?: number;
  responseHeaders?: Array<[string, Value]>;
  body?: string;
  /** Interim responses the origin sends first (102, 103 with fields). */
  interim?: Array<[number, Array<[string, string]>?]>;
  /** The origin drops the connection instead of answering. */
  disconnect?: boolean;
  /** Location / Content-Location values are paths under the case's base path. */
  magicLocations?: boolean;
  /** Seconds to wait after this step (the suite waits 3 s). */
  pauseAfter?: boolean;
  expect?: Expect;
  /** Expected status; null: any. Default: `status`, or 200. */
  expectStatus?: number | null;
  /** Exact values, `['>', n]` for a number greater than n, or `{ fromStep }` for the value the origin sent at that step. */
  expectHeaders?: Array<[string, string | ['>', number] | { fromStep: number }]>;
  expectMissing?: string[];
  /** Header fields the origin must have received for this request (value undefined: present). */
  expectRequestHeaders?: Array<[string, string | undefined]>;
  /** Header fields (or exact values) the origin must not have received. */
  expectRequestMissing?: Array<[string, string | undefined]>;
  /** Expected body; null: not checked. Default: the body of the response that answered. */
  expectBody?: string | null;
  expectInterim?: number[];
}

export interface Case {
  id: string;
  /** required: a MUST of RFC 9111/9110/9213; optimal: what a good cache does; check: RFC-defined but optional behaviour. */
  kind: 'required' | 'optimal' | 'check';
  /** The RFC section the case exercises. */
  spec: string;
  name: string;
  steps: Step[];
}

const DATE_FIELDS = new Set(['date', 'expires', 'last-modified', 'if-modified-since']);
const NO_BODY = new Set([204, 304]);
const PAUSE_MS = 3000;

interface Seen {
  reqNum: number;
  method: string;
  headers: IncomingHttpHeaders;
}

/** The scripted origin: answers each case's numbered requests as the case says and records what it saw. */
export class Origin {
  readonly cases = new Map<string, Case>();
  readonly seen = new Map<string, Seen[]>();
  /** Response header values the origin sent, per case and step number. */
  readonly sent = new Map<string, Map<number, Map<string, string>>>();
  server = http.createServer((req, res) => this.#handle(req, res));
  readonly #sockets = new Set<Socket>();
  url = '';

  async start(): Promise<void> {
    this.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    this.server.keepAliveTimeout = 500;
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    req.on('end', () => this.#answer(req, res));
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    const id = (req.url ?? '').split('?')[0]!.split('/')[2] ?? '';
    const c = this.cases.get(id);
    const reqNum = Number(req.headers['req-num']);
    const step = c?.steps[reqNum - 1];
    if (c === undefined || step === undefined) {
      res.statusCode = 409;
      res.end('no such step');
      return;
    }
    const seen = this.seen.get(id) ?? [];
    seen.push({ reqNum, method: req.method ?? '', headers: req.headers });
    this.seen.set(id, seen);
    if (step.disconnect) {
      req.socket.destroy();
      return;
    }
    const now = Date.now();
    for (const [status, fields = []] of step.interim ?? []) {
      if (status === 102) res.writeProcessing();
      else res.writeEarlyHints(Object.fromEntries(fields));
    }
    let status = step.status ?? 200;
    if (step.expect === 'etag_validated' || step.expect === 'lm_validated') {
      const previous = this.sent.get(id)?.get(reqNum - 1);
      const etag = previous?.get('etag');
      const lm = previous?.get('last-modified');
      const matched = (etag !== undefined && req.headers['if-none-match'] === etag) || (lm !== undefined && req.headers['if-modified-since'] === lm);
      status = matched ? 304 : 999;
    }
    res.statusCode = status;
    const sent = new Map<string, string>();
    res.setHeader('x-origin-req', String(reqNum));
    const fields = new Map<string, string[]>();
    for (const [name, raw] of step.responseHeaders ?? []) {
      const lower = name.toLowerCase();
      let value = typeof raw === 'number' && DATE_FIELDS.has(lower) ? httpDate(now + raw * 1000) : String(raw);
      if (step.magicLocations && (lower === 'location' || lower === 'content-location')) value = `/c/${id}${value === '' ? '' : `/${value}`}`;
      fields.set(lower, [...(fields.get(lower) ?? []), value]);
    }
    for (const [name, values] of fields) {
      res.setHeader(name, values.length === 1 ? values[0]! : values);
      sent.set(name, values.join(', '));
    }
    if (!res.hasHeader('content-type')) res.setHeader('content-type', 'text/plain');
    const perStep = this.sent.get(id) ?? new Map();
    perStep.set(reqNum, sent);
    this.sent.set(id, perStep);
    if (NO_BODY.has(status) || req.method === 'HEAD') res.end();
    else res.end(step.body ?? id);
  }
}

/** IMF-fixdate of `ms`. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export interface Outcome {
  id: string;
  kind: Case['kind'];
  spec: string;
  name: string;
  pass: boolean;
  /** Why it failed: the first failed check. */
  reason?: string;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  interim: number[];
}

function asObject(pairs: Array<[string, string]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    const prior = out[name];
    out[name] = prior === undefined ? value : ([] as string[]).concat(prior, value);
  }
  return out;
}

function send(url: string, step: Step, headers: Array<[string, string]>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const interim: number[] = [];
    const req = http.request(url, { method: step.method ?? 'GET', agent: false, headers: asObject(headers) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), interim }));
      res.on('error', reject);
    });
    req.on('information', (info) => interim.push(info.statusCode));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(step.requestBody);
  });
}

async function runCase(front: string, origin: Origin, c: Case): Promise<Outcome> {
  const fail = (reason: string): Outcome => ({ id: c.id, kind: c.kind, spec: c.spec, name: c.name, pass: false, reason });
  let previousNow = Date.now();
  for (let i = 0; i < c.steps.length; i++) {
    const step = c.steps[i]!;
    const reqNum = i + 1;
    const path = `/c/${c.id}${step.file === undefined ? '' : `/${step.file}`}${step.query === undefined ? '' : `?${step.query}`}`;
    const headers: Array<[string, string]> = [];
    for (const [name, value] of step.requestHeaders ?? []) {
      headers.push([name, typeof value === 'number' && DATE_FIELDS.has(name.toLowerCase()) ? httpDate(previousNow + value * 1000) : String(value)]);
    }
    headers.push(['req-num', String(reqNum)]);
    if (step.requestBody !== undefined) headers.push(['content-length', String(Buffer.byteLength(step.requestBody))]);
    let reply: Reply;
    try {
      reply = await send(front + path, step, headers);
    } catch (err) {
      return fail(`request ${reqNum} failed: ${(err as Error).message}`);
    }
    const from = Number(reply.headers['x-origin-req']);
    const seen = origin.seen.get(c.id)?.find((s) => s.reqNum === reqNum);
    const expectedStatus = step.expectStatus === undefined ? (step.status ?? 200) : step.expectStatus;
    if (reply.status === 999) return fail(`request ${reqNum} should have been conditional`);
    // A stored response standing in for an upstream failure was asked for upstream first.
    const upstreamFails = step.disconnect === true || (step.status ?? 200) >= 500;
    if (step.expect === 'cached' && (from === reqNum || (seen !== undefined && !upstreamFails))) return fail(`response ${reqNum} did not come from the cache`);
    if (step.expect === 'not_cached' && from !== reqNum) return fail(`response ${reqNum} came from the cache`);
    if (step.expect === 'not_stale' && Number.isInteger(from) && from < reqNum) return fail(`response ${reqNum} is the stored one`);
    if (step.expect === 'etag_validated' && seen?.headers['if-none-match'] === undefined) return fail(`request ${reqNum} had no If-None-Match`);
    if (step.expect === 'lm_validated' && seen?.headers['if-modified-since'] === undefined) return fail(`request ${reqNum} had no If-Modified-Since`);
    if (expectedStatus !== null && reply.status !== expectedStatus) return fail(`response ${reqNum} status ${reply.status}, not ${expectedStatus}`);
    for (const [name, want] of step.expectHeaders ?? []) {
      const got = reply.headers[name.toLowerCase()];
      const text = Array.isArray(got) ? got.join(', ') : got;
      if (Array.isArray(want)) {
        if (!(Number(text) > want[1])) return fail(`response ${reqNum} ${name} is ${text}, should be > ${want[1]}`);
      } else if (typeof want === 'object') {
        const sent = origin.sent.get(c.id)?.get(want.fromStep)?.get(name.toLowerCase());
        if (text !== sent) return fail(`response ${reqNum} ${name} is ${text}, not ${sent}`);
      } else if (text !== want) return fail(`response ${reqNum} ${name} is ${text}, not ${want}`);
    }
    for (const name of step.expectMissing ?? []) {
      if (reply.headers[name.toLowerCase()] !== undefined) return fail(`response ${reqNum} has ${name}: ${reply.headers[name.toLowerCase()]}`);
    }
    for (const [name, want] of step.expectRequestHeaders ?? []) {
      const got = seen?.headers[name.toLowerCase()];
      if (seen === undefined) return fail(`request ${reqNum} did not reach the origin`);
      if (want === undefined ? got === undefined : got !== want) return fail(`request ${reqNum} ${name} is ${String(got)}, not ${want ?? 'present'}`);
    }
    for (const [name, value] of step.expectRequestMissing ?? []) {
      const got = seen?.headers[name.toLowerCase()];
      if (got !== undefined && (value === undefined || got === value)) return fail(`request ${reqNum} carried ${name}: ${String(got)}`);
    }
    for (const status of step.expectInterim ?? []) {
      if (!reply.interim.includes(status)) return fail(`interim ${status} not received for request ${reqNum}`);
    }
    if (step.expectBody !== null && !NO_BODY.has(reply.status) && step.method !== 'HEAD') {
      const answering = Number.isInteger(from) ? c.steps[from - 1] : undefined;
      const want = step.expectBody ?? (answering?.expect?.endsWith('validated') ? undefined : answering?.body) ?? c.id;
      if (reply.body !== want) return fail(`response ${reqNum} body is ${JSON.stringify(reply.body.slice(0, 40))}, not ${JSON.stringify(want)}`);
    }
    const dateOfReply = reply.headers.date === undefined ? Number.NaN : Date.parse(reply.headers.date);
    previousNow = Number.isFinite(dateOfReply) ? dateOfReply : Date.now();
    if (step.pauseAfter) await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  return { id: c.id, kind: c.kind, spec: c.spec, name: c.name, pass: true };
}

/** Runs every case through the cache at `front` (which forwards to `origin`), all cases at once. */
export async function runCases(front: string, origin: Origin, cases: readonly Case[]): Promise<Outcome[]> {
  for (const c of cases) origin.cases.set(c.id, c);
  return Promise.all(cases.map((c) => runCase(front, origin, c)));
}

export interface Tally {
  required: [number, number];
  optimal: [number, number];
  check: [number, number];
}

/** Passed / total per kind. */
export function tally(outcomes: readonly Outcome[]): Tally {
  const t: Tally = { required: [0, 0], optimal: [0, 0], check: [0, 0] };
  for (const o of outcomes) {
    t[o.kind][1]++;
    if (o.pass) t[o.kind][0]++;
  }
  return t;
}
