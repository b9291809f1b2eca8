import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import { describe, test } from 'node:test';
import type { CheckResult, HealthProbe } from '../lib/health/checker.js';
import { httpHealthCheck, tcpHealthCheck } from '../lib/health/index.js';
import { HealthMonitor, normalizeChecker } from '../lib/health/monitor.js';
import { tcpAddress } from '../lib/health/tcp-check.js';
import { Target } from '../lib/target.js';
import { closeAll, delay, listen, selfSignedCert, waitFor, type TestServer } from './helpers.js';

function target(url: string): Target {
  return new Target(new URL(url), 1);
}

/** Runs a checker's probe once, as the monitor would, and reports pass or the rejection's reason. */
async function run(check: HealthProbe, url: string, signal = new AbortController().signal): Promise<string> {
  try {
    return (await check(target(url), signal)) ? 'ok' : 'false';
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return code ?? message;
  }
}

interface Transition {
  healthy: boolean;
  result: CheckResult;
  at: number;
}

/** A monitor that records its transitions, for assertions. */
function recordingMonitor(onTransition: (t: Transition) => void = () => {}): { monitor: HealthMonitor; transitions: Transition[] } {
  const transitions: Transition[] = [];
  const monitor = new HealthMonitor({
    transition(_target, healthy, result) {
      const entry = { healthy, result, at: Date.now() };
      transitions.push(entry);
      onTransition(entry);
    },
  });
  return { monitor, transitions };
}

/** A server that accepts requests and never answers them. */
function silentServer(): Promise<TestServer> {
  return listen(() => {});
}

/** A raw TCP server (sockets tracked) whose connection handler is `onConnection`. */
async function tcpServer(
  onConnection: (socket: net.Socket) => void,
  host = '127.0.0.1',
): Promise<{ port: number; sockets: Set<net.Socket>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function closedPort(): Promise<number> {
  const server = await listen(() => {});
  await server.close();
  return server.port;
}

describe('httpHealthCheck', () => {
  test('passes on 200 with a fresh connection it closes, and a health-check user agent', async () => {
    const seen: Array<{ ua: string | undefined; connection: string | undefined; method: string | undefined; url: string | undefined }> = [];
    const server = await listen((req, res) => {
      seen.push({ ua: req.headers['user-agent'], connection: req.headers.connection, method: req.method, url: req.url });
      res.end('fine');
    });
    try {
      const { check } = httpHealthCheck();
      assert.equal(await run(check, server.url), 'ok');
      assert.equal(await run(check, server.url), 'ok');
      assert.deepEqual(seen[0], { ua: 'proxy-balancer-health-check', connection: 'close', method: 'GET', url: '/' });
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0, 'no connection left open');
      assert.equal(server.hits, 2);
    } finally {
      await closeAll(server);
    }
  });

  test('fails on 500, on a missing body string and on a refused connection, with a short reason', async () => {
    const server = await listen((req, res) => {
      res.statusCode = req.url === '/broken' ? 500 : 200;
      res.end('status: degraded');
    });
    try {
      assert.equal(await run(httpHealthCheck({ path: '/broken' }).check, server.url), 'status 500');
      assert.equal(await run(httpHealthCheck({ expectBody: 'status: ok' }).check, server.url), 'body mismatch');
      assert.equal(await run(httpHealthCheck({ expectBody: 'degraded' }).check, server.url), 'ok');
      const global = httpHealthCheck({ expectBody: /STATUS: \w+/gi });
      assert.equal(await run(global.check, server.url), 'ok');
      assert.equal(await run(global.check, server.url), 'ok', 'a /g pattern does not alternate between pass and fail');
      assert.equal(await run(httpHealthCheck().check, `http://127.0.0.1:${await closedPort()}`), 'ECONNREFUSED');
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0);
    } finally {
      await closeAll(server);
    }
  });

  test('reads at most 64 KiB of body: judged then, not when (if ever) the body ends', async () => {
    // An endless body: without the limit the check would hang until its signal aborts.
    const server = await listen((req, res) => {
      const head = req.url === '/early' ? 'HEALTHY' : '';
      res.write(head + 'x'.repeat(80 * 1024));
    });
    try {
      const check = httpHealthCheck({ expectBody: 'HEALTHY', path: '/late' }).check;
      assert.equal(await run(check, server.url, AbortSignal.timeout(2000)), 'body mismatch');
      const early = httpHealthCheck({ expectBody: /^HEALTHY/, path: '/early' }).check;
      assert.equal(await run(early, server.url, AbortSignal.timeout(2000)), 'ok');
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0, 'the unfinished responses were closed');
    } finally {
      await closeAll(server);
    }
  });

  test('a server that never answers: the probe fails when its signal aborts and the connection is closed', async () => {
    const server = await silentServer();
    try {
      const started = Date.now();
      const outcome = await run(httpHealthCheck().check, server.url, AbortSignal.timeout(100));
      const elapsed = Date.now() - started;
      assert.equal(outcome, 'ABORT_ERR');
      assert.ok(elapsed >= 90 && elapsed < 1000, `failed after ${elapsed} ms`);
      assert.equal(server.hits, 1, 'the request did reach the server');
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0, "the server's socket was closed");
    } finally {
      await closeAll(server);
    }
  });

  test('path is resolved under the target base path, query included', async () => {
    const urls: Array<string | undefined> = [];
    const server = await listen((req, res) => {
      urls.push(req.url);
      res.end();
    });
    try {
      assert.equal(await run(httpHealthCheck({ path: '/health?deep=1' }).check, `${server.url}/base`), 'ok');
      assert.equal(await run(httpHealthCheck({ path: '/health' }).check, `${server.url}/base/`), 'ok');
      assert.equal(await run(httpHealthCheck().check, `${server.url}/base`), 'ok');
      assert.equal(await run(httpHealthCheck({ path: '/ready' }).check, server.url), 'ok');
      assert.deepEqual(urls, ['/base/health?deep=1', '/base/health', '/base/', '/ready']);
    } finally {
      await closeAll(server);
    }
  });

  test('expectStatus: default 200–399, a code, a list, a predicate', async () => {
    const server = await listen((req, res) => {
      res.statusCode = Number.parseInt(req.url?.slice(1) ?? '', 10) || 200;
      res.end();
    });
    try {
      const at = (status: number): string => `${server.url}/${status}`;
      const byDefault = httpHealthCheck().check;
      assert.equal(await run(byDefault, at(204)), 'ok');
      assert.equal(await run(byDefault, at(302)), 'ok', 'redirects are not followed, they pass');
      assert.equal(await run(byDefault, at(404)), 'status 404');
      assert.equal(await run(byDefault, at(400)), 'status 400');
      assert.equal(await run(httpHealthCheck({ expectStatus: 204 }).check, at(200)), 'status 200');
      assert.equal(await run(httpHealthCheck({ expectStatus: 204 }).check, at(204)), 'ok');
      assert.equal(await run(httpHealthCheck({ expectStatus: [200, 503] }).check, at(503)), 'ok');
      assert.equal(await run(httpHealthCheck({ expectStatus: [200, 503] }).check, at(500)), 'status 500');
      assert.equal(await run(httpHealthCheck({ expectStatus: (s) => s === 418 }).check, at(418)), 'ok');
      const throwing = (): boolean => {
        throw new Error('predicate broke');
      };
      assert.equal(
        await run(httpHealthCheck({ expectStatus: throwing }).check, at(200)),
        'predicate broke',
        'a throwing predicate fails the check, not the process',
      );
    } finally {
      await closeAll(server);
    }
  });

  test('HEAD method and custom headers', async () => {
    const seen: Array<{ method: string | undefined; ua: string | undefined; token: string; host: string | undefined }> = [];
    const server = await listen((req, res) => {
      seen.push({ method: req.method, ua: req.headers['user-agent'], token: String(req.headers['x-token']), host: req.headers.host });
      res.end('body');
    });
    try {
      const check = httpHealthCheck({ method: 'HEAD', headers: { 'User-Agent': 'mine', 'X-Token': 't', Host: 'app.example' } }).check;
      assert.equal(await run(check, server.url), 'ok');
      assert.deepEqual(seen, [{ method: 'HEAD', ua: 'mine', token: 't', host: 'app.example' }]);
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0);
    } finally {
      await closeAll(server);
    }
  });

  test('https targets: ca and rejectUnauthorized', async () => {
    const { key, cert } = selfSignedCert();
    const server = await listen((_req, res) => res.end('ok'), https.createServer({ key, cert }));
    try {
      const url = `https://127.0.0.1:${server.port}`;
      assert.equal(await run(httpHealthCheck().check, url), 'DEPTH_ZERO_SELF_SIGNED_CERT');
      assert.equal(await run(httpHealthCheck({ ca: cert }).check, url), 'ok');
      assert.equal(await run(httpHealthCheck({ rejectUnauthorized: false }).check, url), 'ok');
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0);
    } finally {
      await closeAll(server);
    }
  });

  test('invalid options throw TypeErrors naming the option', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ interval: 0 }, /httpHealthCheck: options\.interval must be a positive number/],
      [{ timeout: Infinity }, /options\.timeout must be/],
      [{ interval: 2 ** 31 }, /options\.interval must be/],
      [{ healthyThreshold: 1.5 }, /options\.healthyThreshold must be a positive integer, got 1\.5/],
      [{ unhealthyThreshold: 0 }, /options\.unhealthyThreshold must be/],
      [{ jitter: 2 }, /options\.jitter must be a number from 0 to 1/],
      [{ initialState: 'up' }, /options\.initialState must be 'healthy' or 'unhealthy', got "up"/],
      [{ path: 'health' }, /options\.path must be a path starting with '\/'/],
      [{ path: '/a b' }, /options\.path must be/],
      [{ method: 'POST' }, /options\.method must be 'GET' or 'HEAD'/],
      [{ expectStatus: 700 }, /options\.expectStatus must be/],
      [{ expectStatus: [] }, /options\.expectStatus must be/],
      [{ expectBody: 5 }, /options\.expectBody must be/],
      [{ method: 'HEAD', expectBody: 'ok' }, /options\.expectBody must be unset with method 'HEAD'/],
      [{ headers: { 'x-a': 1 } }, /options\.headers\["x-a"\] must be a string/],
      [{ headers: { 'bad name': 'v' } }, /options\.headers has an invalid header "bad name"/],
      [{ ca: 5 }, /options\.ca must be/],
      [{ rejectUnauthorized: 'no' }, /options\.rejectUnauthorized must be a boolean/],
      [{ intervall: 5 }, /httpHealthCheck: unknown option "intervall"/],
      [null, /httpHealthCheck: options must be an object, got null/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => httpHealthCheck(options as never),
        (e: unknown) => e instanceof TypeError && message.test(e.message),
        JSON.stringify(options),
      );
    }
    assert.deepEqual(
      Object.keys(httpHealthCheck({ interval: 100, path: '/h' })),
      ['interval', 'check'],
      'only given schedule fields, defaults stay in the monitor',
    );
  });
});

describe('tcpHealthCheck', () => {
  test('passes on a listening port and closes the socket; fails on a closed port', async () => {
    const server = await tcpServer(() => {});
    try {
      assert.equal(await run(tcpHealthCheck().check, `http://127.0.0.1:${server.port}`), 'ok');
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0);
      assert.equal(await run(tcpHealthCheck().check, `http://127.0.0.1:${await closedPort()}`), 'ECONNREFUSED');
    } finally {
      await closeAll(server);
    }
  });

  test('send/expect: passes when the expected reply arrives, fails when it does not', async () => {
    const server = await listen((_req, res) => res.end('hi'));
    try {
      const ping = 'GET / HTTP/1.0\r\n\r\n';
      assert.equal(await run(tcpHealthCheck({ send: ping, expect: /^HTTP\/1\.1 200/ }).check, server.url), 'ok');
      assert.equal(await run(tcpHealthCheck({ send: Buffer.from(ping), expect: 'hi' }).check, server.url), 'ok');
      assert.equal(await run(tcpHealthCheck({ send: ping, expect: 'SSH-2.0' }).check, server.url), 'expect mismatch');
      assert.equal(await run(tcpHealthCheck({ send: ping }).check, server.url), 'ok', 'send alone passes once written');
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0);
    } finally {
      await closeAll(server);
    }
  });

  test('expect without send waits for a banner, until the signal aborts', async () => {
    const greeter = await tcpServer((socket) => socket.write('220 ready\r\n'));
    const mute = await tcpServer(() => {});
    try {
      assert.equal(await run(tcpHealthCheck({ expect: '220 ' }).check, `http://127.0.0.1:${greeter.port}`), 'ok');
      const started = Date.now();
      assert.equal(await run(tcpHealthCheck({ expect: '220 ' }).check, `http://127.0.0.1:${mute.port}`, AbortSignal.timeout(80)), 'ABORT_ERR');
      assert.ok(Date.now() - started >= 70);
      await waitFor(() => greeter.sockets.size === 0 && mute.sockets.size === 0);
      assert.equal(greeter.sockets.size + mute.sockets.size, 0);
    } finally {
      await closeAll(greeter, mute);
    }
  });

  test('host and port: IPv6 brackets stripped, default ports by protocol', async (t) => {
    assert.deepEqual(tcpAddress(target('http://[::1]:8080/x')), { host: '::1', port: 8080 });
    assert.deepEqual(tcpAddress(target('http://example.com')), { host: 'example.com', port: 80 });
    assert.deepEqual(tcpAddress(target('https://example.com/base')), { host: 'example.com', port: 443 });
    let server: Awaited<ReturnType<typeof tcpServer>>;
    try {
      server = await tcpServer(() => {}, '::1');
    } catch {
      return t.skip('no IPv6 loopback');
    }
    try {
      assert.equal(await run(tcpHealthCheck().check, `http://[::1]:${server.port}`), 'ok');
    } finally {
      await closeAll(server);
    }
  });

  test('invalid options throw TypeErrors naming the option', () => {
    assert.throws(() => tcpHealthCheck({ send: '' }), /tcpHealthCheck: options\.send must be a non-empty string or Buffer/);
    assert.throws(() => tcpHealthCheck({ expect: 5 as never }), /tcpHealthCheck: options\.expect must be/);
    assert.throws(() => tcpHealthCheck({ timeout: -1 }), /tcpHealthCheck: options\.timeout must be/);
    assert.throws(() => tcpHealthCheck({ port: 1 } as never), /tcpHealthCheck: unknown option "port"/);
  });
});

describe('HealthMonitor', () => {
  test('down after exactly unhealthyThreshold failures, up after healthyThreshold passes', async () => {
    // Hits 1–3 fail, later ones pass: the transitions must land on hits 3 and 5.
    const server = await listen((_req, res) => {
      res.statusCode = server.hits <= 3 ? 500 : 200;
      res.end();
    });
    const hitsAt: number[] = [];
    const { monitor, transitions } = recordingMonitor(() => hitsAt.push(server.hits));
    const t = target(server.url);
    try {
      const checker = httpHealthCheck({ interval: 20, jitter: 0, unhealthyThreshold: 3, healthyThreshold: 2 });
      assert.equal(monitor.watch(t, checker), true);
      assert.deepEqual(monitor.status(t), { lastCheck: undefined, consecutiveFailures: 0, consecutiveSuccesses: 0, healthy: true });
      await waitFor(() => transitions.length === 2);
      assert.deepEqual(
        transitions.map((x) => [x.healthy, x.result.ok, x.result.detail]),
        [
          [false, false, 'status 500'],
          [true, true, 'ok'],
        ],
      );
      assert.deepEqual(hitsAt, [3, 5]);
      const status = monitor.status(t);
      assert.equal(status?.healthy, true);
      assert.equal(status?.consecutiveFailures, 0);
      assert.ok((status?.consecutiveSuccesses ?? 0) >= 2);
      assert.ok(status?.lastCheck?.ok);
    } finally {
      monitor.close();
      await closeAll(server);
    }
  });

  test("initialState 'unhealthy' goes up on the first pass; afterwards healthyThreshold applies", async () => {
    const script = [true, false, true, true, true];
    let calls = 0;
    const probe: HealthProbe = async () => script[calls++] ?? true;
    const { monitor, transitions } = recordingMonitor();
    try {
      const up = monitor.watch(target('http://127.0.0.1:1'), {
        check: probe,
        interval: 5,
        jitter: 0,
        initialState: 'unhealthy',
        healthyThreshold: 3,
        unhealthyThreshold: 1,
      });
      assert.equal(up, false);
      await waitFor(() => transitions.length === 3);
      assert.deepEqual(
        transitions.map((x) => x.healthy),
        [true, false, true],
      );
      assert.ok(calls >= 5);
    } finally {
      monitor.close();
    }
  });

  test('first probes are spread over one interval, not fired in lock-step', async () => {
    const starts: number[] = [];
    const probe: HealthProbe = async () => {
      starts.push(Date.now());
      return true;
    };
    const { monitor } = recordingMonitor();
    try {
      const begun = Date.now();
      for (let i = 0; i < 20; i++) monitor.watch(target(`http://t${i}:1`), { check: probe, interval: 200 });
      await monitor.firstRound();
      const offsets = starts.slice(0, 20).map((at) => at - begun);
      assert.ok(Math.max(...offsets) < 300, `all within the first interval: ${offsets}`);
      assert.ok(Math.max(...offsets) - Math.min(...offsets) > 40, `spread out: ${offsets}`);
    } finally {
      monitor.close();
    }
  });

  test('probes of one target never overlap, even with an interval shorter than a probe', async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const gaps: number[] = [];
    let lastEnd = 0;
    const probe: HealthProbe = async () => {
      if (lastEnd) gaps.push(Date.now() - lastEnd);
      calls++;
      maxActive = Math.max(maxActive, ++active);
      await delay(40);
      active--;
      lastEnd = Date.now();
      return true;
    };
    const { monitor } = recordingMonitor();
    try {
      monitor.watch(target('http://127.0.0.1:1'), { check: probe, interval: 10, jitter: 0, timeout: 1000 });
      await waitFor(() => calls >= 4);
      assert.equal(maxActive, 1);
      assert.ok(
        gaps.every((gap) => gap >= 8),
        `waits an interval after each probe settles: ${gaps}`,
      );
    } finally {
      monitor.close();
    }
  });

  test('timeout is enforced even when the probe ignores its signal; its late result is ignored', async () => {
    const signals: AbortSignal[] = [];
    const starts: number[] = [];
    const probe: HealthProbe = (_t, signal) => {
      signals.push(signal);
      starts.push(Date.now());
      return delay(300).then(() => true);
    };
    const { monitor, transitions } = recordingMonitor();
    const t = target('http://127.0.0.1:1');
    try {
      monitor.watch(t, { check: probe, interval: 500, timeout: 50, jitter: 0, unhealthyThreshold: 1 });
      await waitFor(() => transitions.length === 1);
      const [down] = transitions;
      assert.equal(down?.healthy, false);
      assert.equal(down?.result.detail, 'timeout');
      const took = (down?.at ?? 0) - (starts[0] ?? 0);
      assert.ok(took >= 45 && took < 250, `failed after ${took} ms`);
      assert.equal(signals[0]?.aborted, true);
      assert.equal((signals[0]!.reason as Error).name, 'TimeoutError');
      await delay(300); // the ignored probe resolves `true` meanwhile
      assert.equal(transitions.length, 1);
      assert.equal(monitor.status(t)?.consecutiveSuccesses, 0);
    } finally {
      monitor.close();
    }
  });

  test('throwing, rejecting and non-true probes fail with a detail', async () => {
    const probes: Record<string, HealthProbe> = {
      throws: () => {
        throw new Error('sync boom');
      },
      rejectsWithCode: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
      resolvesFalse: async () => false,
      resolvesTruthy: async () => 'yes' as never,
    };
    const { monitor } = recordingMonitor();
    const targets = Object.keys(probes).map((name) => target(`http://${name.toLowerCase()}:1`));
    try {
      Object.values(probes).forEach((check, i) => monitor.watch(targets[i]!, { check, interval: 10 }));
      await monitor.firstRound();
      assert.deepEqual(
        targets.map((t) => monitor.status(t)?.lastCheck?.detail),
        ['sync boom', 'ECONNREFUSED', 'failed', 'resolved "yes", not true'],
      );
      assert.ok(targets.every((t) => monitor.status(t)?.lastCheck?.ok === false));
    } finally {
      monitor.close();
    }
  });

  test('close() aborts in-flight probes, closes their sockets, and nothing runs afterwards', async () => {
    const server = await silentServer();
    let held: (value: boolean) => void = () => {};
    let heldCalls = 0;
    const heldProbe: HealthProbe = () => {
      heldCalls++;
      return new Promise((resolve) => (held = resolve));
    };
    const { monitor, transitions } = recordingMonitor();
    try {
      monitor.watch(target(server.url), httpHealthCheck({ interval: 10, timeout: 5000, unhealthyThreshold: 1 }));
      monitor.watch(target('http://127.0.0.1:1'), { check: heldProbe, interval: 10, unhealthyThreshold: 1 });
      await waitFor(() => server.sockets.size === 1 && heldCalls === 1);
      assert.equal(server.sockets.size, 1, 'a probe is in flight');
      monitor.close();
      monitor.close();
      await waitFor(() => server.sockets.size === 0);
      assert.equal(server.sockets.size, 0, 'the in-flight probe was aborted and its socket closed');
      held(false); // settles after close: must not count
      await delay(60);
      assert.equal(server.hits, 1);
      assert.equal(heldCalls, 1);
      assert.deepEqual(transitions, []);
      assert.equal(monitor.status(target(server.url)), undefined);
      assert.equal(monitor.watch(target(server.url), { check: heldProbe }), true, 'watch after close only reports the initial state');
      await delay(30);
      assert.equal(heldCalls, 1);
    } finally {
      monitor.close();
      await closeAll(server);
    }
  });

  test('a monitor does not keep the process alive, except while firstRound() is awaited', async () => {
    // Top-level await: the child would exit with code 13 if firstRound() let the event loop empty.
    const code = `
      import { HealthMonitor } from './lib/health/monitor';
      const target = (key) => ({ key, url: new URL('http://127.0.0.1:1') });
      const [a, b] = [target('a'), target('b')];
      const monitor = new HealthMonitor({ transition() {} });
      monitor.watch(a, { check: async () => true, interval: 300 });
      monitor.watch(b, { check: () => new Promise(() => {}), interval: 100, timeout: 100 });
      await monitor.firstRound();
      console.log(monitor.status(a).lastCheck.detail, monitor.status(b).lastCheck.detail);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: new URL('..', import.meta.url),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const timer = setTimeout(() => child.kill(), 10_000);
    try {
      assert.equal(await exit, 0, 'exited on its own, with both targets still watched');
      assert.equal(out.trim(), 'ok timeout');
    } finally {
      clearTimeout(timer);
    }
  });

  test('firstRound() resolves after one check of each target, or at once with none', async () => {
    const { monitor } = recordingMonitor();
    const calls = new Map<string, number>();
    const probe: HealthProbe = async (t) => {
      calls.set(t.key, (calls.get(t.key) ?? 0) + 1);
      return true;
    };
    try {
      await monitor.firstRound();
      const targets = ['http://a:1', 'http://b:1', 'http://c:1'].map(target);
      for (const t of targets) monitor.watch(t, { check: probe, interval: 40 });
      await monitor.firstRound();
      assert.ok(targets.every((t) => monitor.status(t)?.lastCheck?.ok === true));
      assert.ok(targets.every((t) => (calls.get(t.key) ?? 0) >= 1));
      const slow = target('http://slow:1');
      monitor.watch(slow, { check: probe, interval: 60_000 });
      const round = monitor.firstRound();
      monitor.unwatch(slow);
      await round; // an unwatched target no longer holds the round up
    } finally {
      monitor.close();
    }
  });

  test('unwatch stops probing and aborts the in-flight probe; watch again replaces the checker', async () => {
    const signals: AbortSignal[] = [];
    const slowProbe: HealthProbe = (_t, signal) => {
      signals.push(signal);
      return new Promise(() => {});
    };
    let fastCalls = 0;
    const fastProbe: HealthProbe = async () => {
      fastCalls++;
      return true;
    };
    const { monitor } = recordingMonitor();
    const t = target('http://127.0.0.1:1');
    try {
      monitor.watch(t, { check: slowProbe, interval: 5, timeout: 5000 });
      await waitFor(() => signals.length === 1);
      assert.equal(monitor.watch(t, { check: fastProbe, interval: 5, initialState: 'unhealthy' }), false);
      assert.equal(signals[0]?.aborted, true, 'replacing aborts the old checker’s probe');
      await waitFor(() => fastCalls >= 2);
      assert.equal(signals.length, 1, 'the old checker is not called again');
      monitor.unwatch(t);
      const after = fastCalls;
      await delay(40);
      assert.equal(fastCalls, after);
      assert.equal(monitor.status(t), undefined);
    } finally {
      monitor.close();
    }
  });

  test('normalizeChecker fills defaults and names the option in TypeErrors', () => {
    const probe: HealthProbe = async () => true;
    const defaults = { interval: 5000, timeout: 2000, healthyThreshold: 2, unhealthyThreshold: 3, jitter: 0.1, initialState: 'healthy' };
    assert.deepEqual({ ...normalizeChecker(probe, 'opt'), check: undefined }, { ...defaults, check: undefined });
    const custom = normalizeChecker({ check: probe, interval: 100, jitter: 0 }, 'opt');
    assert.equal(custom.interval, 100);
    assert.equal(custom.jitter, 0);
    assert.equal(custom.timeout, 2000);
    class Pinger {
      private readonly answer = true;
      async check(): Promise<boolean> {
        return this.answer;
      }
    }
    return normalizeChecker(new Pinger(), 'opt')
      .check(target('http://a:1'), new AbortController().signal)
      .then((v) => {
        assert.equal(v, true, 'a class-based checker keeps its this');
        assert.throws(
          () => normalizeChecker(5 as never, 'loadBalance: options.healthCheck'),
          /^TypeError: loadBalance: options\.healthCheck must be a health check .*got 5$/,
        );
        assert.throws(() => normalizeChecker({} as never, 'healthCheck'), /healthCheck must be a health check/);
        assert.throws(
          () => normalizeChecker({ check: probe, timeout: 0 }, 'loadBalance: options.healthCheck'),
          /loadBalance: options\.healthCheck\.timeout must be a positive number/,
        );
        assert.throws(
          () => normalizeChecker({ check: probe, initialState: 'down' as never }, 'targets[0].healthCheck'),
          /targets\[0\]\.healthCheck\.initialState must be/,
        );
      });
  });
});
