import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { delay } from '../helpers.js';
import { show } from '../abuse/framing.js';
import { describeReply, get, NORMAL_BODY, rawBackend, send, type ClientReply, type RawBackend, type RawRequest } from '../upstream/harness.js';
import { header, headerValues, type Message } from '../upstream/http1.js';
import type { ChildStats } from './balancer-child.js';
import { makeCase, referenceOf, type FuzzCase, type Reference } from './cases.js';

const CHILD = fileURLToPath(new URL('./balancer-child.ts', import.meta.url));

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** First case index; default 0. */
  from?: number;
  /** Cases in flight at once; default 4. */
  concurrency?: number;
  /** Cases between quiescence checks (in-flight, sockets, timers, memory, a normal request); default 250. */
  checkEvery?: number;
  /** Stop at the first failure; default false. */
  stopOnFailure?: boolean;
  /** Progress lines go here; default none. */
  log?: (line: string) => void;
}

export interface Failure {
  /** Failure class: 'crash', 'hang', 'malformed-relayed', 'corrupt', 'corrupt-partial', 'desync', 'well-formed-lost', 'leak-inflight', 'leak-sockets', 'leak-timers', 'memory', 'normal-request'. */
  kind: string;
  /** Case index (undefined for a checkpoint failure). */
  index: number | undefined;
  detail: string;
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  failures: Failure[];
  crashes: number;
  /** Client outcomes by kind: 'relayed', 'cut', 'balancer 502'... */
  outcomes: Record<string, number>;
  /** Peak child RSS sampled at checkpoints, and heap after GC at the last one, bytes. */
  peakRss: number;
  lastHeap: number;
  ms: number;
}

interface Child {
  process: ChildProcess;
  port: number;
  stderr: string[];
  dead: boolean;
  request(type: 'stats' | 'gc' | 'close'): Promise<ChildStats>;
}

let nextMessage = 1;

async function startChild(targets: string[], onDeath: (child: Child, code: number | null, signal: string | null) => void): Promise<Child> {
  const proc = fork(CHILD, [JSON.stringify(targets)], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  const stderr: string[] = [];
  proc.stderr!.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString());
    if (stderr.length > 50) stderr.shift();
  });
  const pending = new Map<number, { resolve: (stats: ChildStats) => void; reject: (err: Error) => void }>();
  proc.on('error', () => {});
  const child: Child = {
    process: proc,
    port: 0,
    stderr,
    dead: false,
    request: (type) =>
      new Promise((resolve, reject) => {
        if (child.dead || !proc.connected) return reject(new Error('the balancer process is dead'));
        const id = nextMessage++;
        pending.set(id, { resolve, reject });
        proc.send({ type, id });
      }),
  };
  const ready = new Promise<number>((resolve, reject) => {
    proc.on('message', (message: { type: string; port?: number; id?: number }) => {
      if (message.type === 'ready') resolve(message.port!);
      else pending.get(message.id!)?.resolve(message as ChildStats);
      if (message.id !== undefined) pending.delete(message.id);
    });
    proc.once('exit', (code, signal) => {
      child.dead = true;
      for (const { reject: fail } of pending.values()) fail(new Error('the balancer process died'));
      pending.clear();
      reject(new Error(`the balancer process exited before it was ready (${code ?? signal}): ${stderr.join('')}`));
      onDeath(child, code, signal);
    });
  });
  child.port = await ready;
  return child;
}

const ERROR_BODY: Record<number, string> = { 502: 'Bad Gateway\n', 503: 'Service Unavailable\n', 504: 'Gateway Timeout\n' };

/** Whether `message` is the balancer's own error page rather than a relayed response. */
function balancerError(message: Message, method: string): boolean {
  if (ERROR_BODY[message.status] === undefined) return false;
  const body = method === 'HEAD' ? '' : ERROR_BODY[message.status];
  return header(message, 'x-case') === undefined && message.body.toString('latin1') === body;
}

/** A field's value with repeated lines combined (RFC 9110 §5.3), as a relay may send them. */
function combined(message: Message, name: string): string | undefined {
  const values = headerValues(message, name);
  return values.length === 0 ? undefined : values.join(', ');
}

const TAG = /\[case ([0-9a-z]+-[0-9a-z]+|smuggled)\]/g;

/** Checks one client reply against what the backend sent; returns the failure, if any, and the outcome's name. */
export function judge(c: FuzzCase, ref: Reference, reply: ClientReply): { outcome: string; failure?: Omit<Failure, 'index'> } {
  const final = reply.final;
  const fail = (kind: string, detail: string) => ({ outcome: kind, failure: { kind, detail } });
  // Bytes of another case, or a smuggled second response, must never reach this client (unless this case's own upstream sent them as body bytes).
  const upstream = Buffer.concat(c.writes.map((w) => w.bytes)).toString('latin1');
  for (const m of reply.bytes.toString('latin1').matchAll(TAG)) {
    if (m[1] !== c.id && !upstream.includes(m[0])) return fail('desync', `the reply holds ${m[0]}`);
  }
  if (final !== undefined && final.status !== 101 && final.status >= 100 && final.status < 200) return fail('corrupt', 'an interim response as the final one');
  if (c.requestMutations.length > 0) {
    // A mutated request may be refused by the front, reach the backend intact, or not at all: anything but a desync or a crash.
    return { outcome: final === undefined ? 'request refused (closed)' : `request mutated: ${final.status}` };
  }
  if (final === undefined || !final.complete) {
    if (!reply.closedByServer) return fail('hang', `no complete response and the connection left open after ${reply.elapsed} ms`);
    if (final !== undefined && ref.final !== undefined && !ref.final.body.subarray(0, final.body.length).equals(final.body))
      return fail('corrupt-partial', 'the cut body is not a prefix of the upstream body');
    if (ref.strict) return fail('well-formed-lost', `a well-formed response (${ref.final!.status}) arrived cut`);
    return { outcome: 'cut' };
  }
  if (balancerError(final, c.method)) {
    if (ref.strict) return fail('well-formed-lost', `a well-formed ${ref.final!.status} became the balancer's ${final.status}`);
    return { outcome: `balancer ${final.status}` };
  }
  // A complete relayed response: it must be the upstream's, and the upstream's must have been complete.
  if (ref.final === undefined) return fail('malformed-relayed', `a broken upstream response (${ref.why}) arrived complete as ${final.status}`);
  if (final.status !== ref.final.status) return fail('corrupt', `status ${final.status}, upstream ${ref.final.status}`);
  if (!final.body.equals(ref.final.body)) {
    // A reset in a close-delimited body may discard what the kernel had not yet handed over and
    // still read as end of stream in Node: the balancer cannot tell that end from a real one.
    if (c.finish === 'reset' && ref.final.body.subarray(0, final.body.length).equals(final.body)) return { outcome: 'reset read as end' };
    return fail('corrupt', `body of ${final.body.length} B differs from the upstream's ${ref.final.body.length} B`);
  }
  for (const name of ['x-case', 'x-tag']) {
    if (combined(final, name) !== combined(ref.final, name))
      return fail('corrupt', `${name}: ${JSON.stringify(combined(final, name))}, upstream ${JSON.stringify(combined(ref.final, name))}`);
  }
  return { outcome: 'relayed' };
}

/**
 * The backend's side of a request-framing case. Every request for it is the case's own request line
 * carrying the client's body (a prefix when the backend closed mid-upload or a retry followed): more than one only as
 * retries (`retry` is on), never a request line found inside another request's bytes (smuggled);
 * none when the balancer refused it.
 */
export function judgeFraming(c: FuzzCase, reply: ClientReply, requests: readonly RawRequest[]): Omit<Failure, 'index'> | undefined {
  const own = `${c.method} /c/${c.id} HTTP/1.1`;
  const mine = requests.filter((r) => r.head.includes(`/c/${c.id} `) || r.head.includes(`/smuggled/${c.id} `));
  const seen = mine.map((r) => `${JSON.stringify(r.head.split('\r\n', 1)[0])} (${r.received} B body${r.complete ? '' : ', incomplete'})`).join(', ');
  const smuggled = mine.filter((r) => r.head.split('\r\n', 1)[0] !== own);
  if (smuggled.length > 0) return { kind: 'smuggled', detail: `the backend read ${mine.length} request(s): ${seen}` };
  const status = reply.final?.status;
  if (status !== undefined && [400, 413, 431].includes(status) && header(reply.final!, 'x-case') === undefined && mine.length > 0)
    return { kind: 'refused-but-forwarded', detail: `the client got ${status}, the backend read ${seen}` };
  const owed = c.framing!.body;
  // A cut attempt (a prefix of the body, never completed at the backend) is one the backend closed
  // mid-upload, or one abandoned for a retry that carried the whole body (a pooled connection that
  // an earlier case's backend broke).
  const retried = mine.some((r) => r.complete);
  for (const r of mine) {
    const ok = r.complete ? r.body.equals(owed) : (c.finish !== 'keep' || retried) && owed.subarray(0, r.received).equals(r.body);
    if (!ok) return { kind: 'framing-corrupt', detail: `the backend read ${seen}: ${show(r.body, 200)}, the client sent ${owed.length} B ${show(owed, 200)}` };
  }
  return undefined;
}

/** Runs `options.cases` cases against a balancer (cache, retries, health checks on) in a child process. */
export async function fuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const concurrency = options.concurrency ?? 4;
  const checkEvery = options.checkEvery ?? 250;
  const from = options.from ?? 0;
  const log = options.log ?? (() => {});
  const failures: Failure[] = [];
  const outcomes: Record<string, number> = {};
  const live = new Map<string, FuzzCase>();
  const running = new Set<number>();
  let crashes = 0;
  let peakRss = 0;
  let lastHeap = 0;

  const backend: RawBackend = await rawBackend(async (conn, req) => {
    const id = /^\/c\/([0-9a-z]+-[0-9a-z]+)$/.exec(req.url)?.[1];
    const c = id === undefined ? undefined : live.get(id);
    if (c === undefined) {
      await req.waitForBody();
      conn.write('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nunknown case');
      return;
    }
    for (const write of c.writes) {
      if (write.delayMs > 0) await delay(write.delayMs);
      if (conn.socket.destroyed) return;
      conn.write(write.bytes);
    }
    if (c.finish === 'end') conn.socket.end();
    else if (c.finish === 'reset') conn.socket.resetAndDestroy();
  }, 2);

  let child!: Child;
  const onDeath = (dead: Child, code: number | null, signal: string | null): void => {
    if (dead !== child || closing) return;
    crashes++;
    const stderr = dead.stderr.join('');
    const signature = /^\w*Error[^\n]*/m.exec(stderr)?.[0] ?? `exit ${code ?? signal}`;
    const detail = `${signature} (cases ${[...running].join(',')} in flight)`;
    failures.push({ kind: 'crash', index: [...running][0], detail });
    log(`CRASH ${detail}\n${stderr.slice(-2500)}`);
  };
  let closing = false;
  child = await startChild(backend.urls, onDeath);
  let restarting: Promise<void> | undefined;
  const ensureChild = async (): Promise<void> => {
    if (!child.dead) return;
    restarting ??= startChild(backend.urls, onDeath).then((fresh) => {
      child = fresh;
      restarting = undefined;
    });
    await restarting;
  };
  const baseline = await quietStats(child);
  log(`balancer process ready: ${JSON.stringify(baseline.resources)}, RSS ${(baseline.rss / 2 ** 20).toFixed(0)} MB`);

  let ran = 0;
  const runCase = async (index: number): Promise<void> => {
    await ensureChild();
    ran++;
    const c = makeCase(options.seed, index);
    const ref = referenceOf(c);
    live.set(c.id, c);
    running.add(index);
    try {
      const attempts = c.repeat ? 2 : 1;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const current = child;
        if (current.dead) return;
        const reply = await send(current.port, c.request, { method: c.method, idleMs: 4 * 500 + 1500 });
        let verdict = judge(c, ref, reply);
        if (c.framing !== undefined && verdict.failure === undefined) {
          // A smuggled request may reach the backend just after the reply.
          await delay(50);
          const failure = judgeFraming(c, reply, backend.requests);
          if (failure !== undefined) verdict = { outcome: failure.kind, failure };
        }
        // A case in flight when the balancer died saw its connection cut: the crash is the failure, not
        // this. The process's exit is heard after the connection's close, so give it a moment.
        if (verdict.failure !== undefined && !current.dead) await delay(300);
        if (current.dead || current !== child) {
          outcomes['lost to a crash'] = (outcomes['lost to a crash'] ?? 0) + 1;
          return;
        }
        outcomes[verdict.outcome] = (outcomes[verdict.outcome] ?? 0) + 1;
        if (verdict.failure !== undefined) {
          const failure = {
            ...verdict.failure,
            index,
            detail: `${verdict.failure.detail} [case ${index}${attempt > 0 ? ', repeat' : ''}: ${c.method}${c.requestMutations.length > 0 ? `, request ${c.requestMutations.join('+')}` : ''}, mutations ${c.mutations.join('+') || 'none'}, finish ${c.finish}, reference ${ref.why}]`,
          };
          failures.push(failure);
          log(`FAIL ${failure.kind}: ${failure.detail}`);
          return;
        }
      }
      // Whatever that case did, the balancer still serves a normal request. (A 502 is allowed once: a
      // case's late excess bytes may land on the pooled connection this request reuses.)
      const current = child;
      const isNormal = (reply: ClientReply): boolean => reply.final?.status === 200 && reply.final.complete && reply.final.body.toString() === NORMAL_BODY;
      let normal = await send(current.port, get('/normal'));
      if (!isNormal(normal) && normal.final?.status === 502 && normal.final.complete) normal = await send(current.port, get('/normal'));
      if (current !== child || current.dead) return;
      if (!isNormal(normal)) {
        await delay(300);
        if (current.dead || current !== child) return;
        const detail = `GET /normal after case ${index}: ${describeReply(normal)}; balancer stats ${JSON.stringify((await current.request('stats').catch(() => undefined))?.inFlight)} in flight`;
        failures.push({ kind: 'normal-request', index, detail });
        log(`FAIL normal-request: ${detail}`);
      }
    } finally {
      running.delete(index);
    }
  };

  const checkpoint = async (done: number): Promise<void> => {
    await ensureChild();
    const check = async (kind: string, ok: () => Promise<boolean>, detail: () => string): Promise<void> => {
      if (!(await ok())) {
        failures.push({ kind, index: undefined, detail: `after ${done} cases: ${detail()}` });
        log(`FAIL ${kind}: after ${done} cases: ${detail()}`);
      }
    };
    let stats = await quietStats(child);
    await check(
      'leak-inflight',
      async () => stats.inFlight === 0,
      () => `lb.stats().inFlight is ${stats.inFlight}`,
    );
    await check(
      'leak-sockets',
      async () => (stats.resources.TCPSocketWrap ?? 0) <= (baseline.resources.TCPSocketWrap ?? 0),
      () =>
        `${stats.resources.TCPSocketWrap ?? 0} TCP sockets open in the balancer process, ${baseline.resources.TCPSocketWrap ?? 0} at the start: ${stats.sockets.join('; ')}`,
    );
    await check(
      'leak-timers',
      async () => (stats.resources.Timeout ?? 0) <= (baseline.resources.Timeout ?? 0) + 2,
      () => `${stats.resources.Timeout ?? 0} timers active, ${baseline.resources.Timeout ?? 0} at the start`,
    );
    stats = await child.request('gc');
    peakRss = Math.max(peakRss, stats.rss);
    lastHeap = stats.heapUsed;
    await check(
      'memory',
      async () => stats.rss < 600 * 1024 * 1024 && stats.heapUsed < baseline.heapUsed + 96 * 1024 * 1024,
      () =>
        `RSS ${(stats.rss / 2 ** 20).toFixed(0)} MB, heap ${(stats.heapUsed / 2 ** 20).toFixed(0)} MB after GC (${(baseline.heapUsed / 2 ** 20).toFixed(0)} MB at the start)`,
    );
    let normal: ClientReply | undefined;
    await check(
      'normal-request',
      async () => {
        // A target ejected by passive detection may take up to maxEjectionTime to come back; the other serves meanwhile.
        for (let i = 0; i < 10; i++) {
          normal = await send(child.port, get('/normal'));
          if (normal.final?.status === 200 && normal.final.complete && normal.final.body.toString() === NORMAL_BODY) return true;
          await delay(200);
        }
        return false;
      },
      () => `GET /normal answered ${normal?.final?.status ?? 'nothing'}`,
    );
    live.clear();
    log(
      `${done} cases, ${failures.length} failures, ${crashes} crashes, RSS ${(stats.rss / 2 ** 20).toFixed(0)} MB, heap ${(stats.heapUsed / 2 ** 20).toFixed(0)} MB, ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
  };

  try {
    let next = from;
    const end = from + options.cases;
    while (next < end) {
      const batchEnd = Math.min(end, next + checkEvery);
      const workers = Array.from({ length: concurrency }, async () => {
        while (next < batchEnd) {
          const index = next++;
          await runCase(index);
          if (options.stopOnFailure && failures.length > 0) next = end;
        }
      });
      await Promise.all(workers);
      try {
        await checkpoint(next - from);
      } catch (err) {
        // The balancer died during the checks: that is reported as a crash; carry on with a fresh one.
        if (!child.dead) throw err;
      }
      if (options.stopOnFailure && failures.length > 0) break;
    }
  } finally {
    closing = true;
    if (!child.dead) {
      await Promise.race([child.request('close'), delay(5000)]).catch(() => {});
      child.process.kill();
    }
    await backend.close();
  }
  return { seed: options.seed, cases: ran, failures, crashes, outcomes, peakRss, lastHeap, ms: Date.now() - started };
}

/** Stats once the balancer is quiet: nothing in flight, no client socket, idle upstream sockets gone (up to 3 s). */
async function quietStats(child: Child): Promise<ChildStats> {
  let stats = await child.request('stats');
  const end = Date.now() + 3000;
  while (Date.now() < end && (stats.inFlight > 0 || stats.clientSockets > 0 || (stats.resources.TCPSocketWrap ?? 0) > 0)) {
    await delay(100);
    stats = await child.request('stats');
  }
  return stats;
}
