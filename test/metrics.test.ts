import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
import { leastRequest, loadBalance, peakEwma, responseCache, type MetricsHandler } from 'proxy-balancer';
import { closeAll, delay, listen, request, waitFor, type TestServer } from './helpers.js';

// ---- a small parser of the text exposition format (version 0.0.4), strict about what it accepts

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface ParsedFamily {
  name: string;
  help: string | undefined;
  type: string | undefined;
  samples: ParsedSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    assert.ok(eq > i, `label name expected in: ${line}`);
    const name = text.slice(i, eq);
    assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_]*$/, `label name in: ${line}`);
    assert.equal(text[eq + 1], '"', `quoted label value expected in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j];
        assert.ok(next === '\\' || next === '"' || next === 'n', `bad escape in: ${line}`);
        value += next === 'n' ? '\n' : next;
      } else value += text[j];
    }
    assert.equal(text[j], '"', `unterminated label value in: ${line}`);
    assert.ok(!(name in labels), `duplicate label ${name} in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else assert.equal(i, text.length, `comma expected after a label in: ${line}`);
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return Number.NaN;
  const value = Number(text);
  assert.ok(text !== '' && !Number.isNaN(value), `bad value in: ${line}`);
  return value;
}

/** Parses exposition text; asserts the format's rules (HELP/TYPE before samples, known family of every sample, no duplicate series). */
function parseExposition(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const seen = new Set<string>();
  const familyOf = (name: string): ParsedFamily => {
    let family = families.get(name);
    if (family === undefined) families.set(name, (family = { name, help: undefined, type: undefined, samples: [] }));
    return family;
  };
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      assert.match(name, METRIC_NAME, line);
      const family = familyOf(name);
      assert.equal(family.samples.length, 0, `${kind} of ${name} after its samples`);
      if (kind === 'HELP') {
        assert.equal(family.help, undefined, `second HELP for ${name}`);
        family.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      } else {
        assert.equal(family.type, undefined, `second TYPE for ${name}`);
        assert.ok(TYPES.has(rest), `unknown type in: ${line}`);
        family.type = rest;
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    assert.ok(sample !== null, `unparsable line: ${line}`);
    const [, name, labelText, valueText] = sample as unknown as [string, string, string | undefined, string];
    const labels = parseLabels(labelText ?? '', line);
    const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
    const family = families.get(name) ?? (histogram !== null && families.get(histogram[1]!)?.type === 'histogram' ? families.get(histogram[1]!) : undefined);
    assert.ok(family?.type !== undefined, `sample of an undeclared family: ${line}`);
    if (family.type === 'histogram') assert.notEqual(name, family.name, `histogram sample without a suffix: ${line}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `duplicate series: ${line}`);
    seen.add(key);
    family.samples.push({ name, labels, value: parseValue(valueText, line) });
  }
  for (const family of families.values()) {
    assert.ok(family.help !== undefined && family.help.length > 0, `${family.name} has a HELP line`);
    assert.ok(family.type !== undefined, `${family.name} has a TYPE line`);
  }
  return families;
}

/** Sum of the samples of `name` whose labels include `match`. */
function sum(families: Map<string, ParsedFamily>, name: string, match: Record<string, string> = {}, family = name): number {
  const f = families.get(family);
  assert.ok(f !== undefined, `family ${family} is exported`);
  return f.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

/** Asserts every histogram's buckets: `le` ascending ending at +Inf, counts non-decreasing, +Inf equal to `_count`. */
function checkHistograms(families: Map<string, ParsedFamily>): void {
  for (const family of families.values()) {
    if (family.type !== 'histogram') continue;
    const groups = new Map<string, ParsedSample[]>();
    for (const s of family.samples) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    assert.ok(groups.size > 0, `${family.name} has series`);
    for (const [key, samples] of groups) {
      const buckets = samples.filter((s) => s.name === `${family.name}_bucket`);
      const count = samples.find((s) => s.name === `${family.name}_count`);
      const total = samples.find((s) => s.name === `${family.name}_sum`);
      assert.ok(buckets.length > 1 && count !== undefined && total !== undefined, `${family.name}${key}: buckets, _sum and _count`);
      const bounds = buckets.map((b) => parseValue(b.labels.le!, b.labels.le!));
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(bounds[i]! > bounds[i - 1]!, `${family.name}${key}: le ascending`);
        assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${family.name}${key}: bucket counts monotonic`);
      }
      assert.equal(bounds.at(-1), Infinity, `${family.name}${key}: last bucket is +Inf`);
      assert.equal(buckets.at(-1)!.value, count.value, `${family.name}${key}: +Inf bucket equals _count`);
      assert.ok(total.value >= 0);
    }
  }
}

async function scrape(url: string): Promise<Map<string, ParsedFamily>> {
  const reply = await request(url);
  assert.equal(reply.status, 200);
  assert.equal(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(reply.body);
}

/** A backend: `/fail` answers 500, `/cached` is cacheable for a minute, `/hold` waits for `release()`. */
async function appBackend(name: string): Promise<TestServer & { release(): void }> {
  let held: ServerResponse[] = [];
  const server = await listen((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url === '/fail') {
      res.statusCode = 500;
      res.end('fail');
    } else if (req.url === '/cached') {
      res.setHeader('cache-control', 'public, max-age=60');
      res.end(`cached ${name}`);
    } else if (req.url === '/hold') {
      held.push(res);
    } else res.end(name);
  });
  return Object.assign(server, {
    release() {
      for (const res of held) res.end(name);
      held = [];
    },
  });
}

/** A URL nothing listens on. */
async function deadUrl(): Promise<string> {
  const s = await listen((_req, res) => res.end());
  await s.close();
  return s.url;
}

/** A front server with `/metrics` served by `metrics` and everything else by the balancer. */
function front(lb: (req: IncomingMessage, res: ServerResponse) => void, metrics: MetricsHandler): Promise<TestServer> {
  return listen((req, res) => (req.url === '/metrics' ? metrics(req, res) : lb(req, res)));
}

describe('lb.metrics()', () => {
  test('serves the Prometheus text format whose counters, histogram and gauges match the traffic sent', async () => {
    const a = await appBackend('a');
    const b = await appBackend('b');
    const dead = await deadUrl();
    const lb = loadBalance({
      targets: [a.url, b.url, dead],
      outlierDetection: { consecutiveFailures: 1, baseEjectionTime: 60_000 },
      rateLimit: { limit: 2, windowMs: 60_000, key: (req) => req.headers['x-client'] as string | undefined },
      cache: responseCache(),
    });
    const server = await front(lb, lb.metrics());
    try {
      // 9 GETs: the dead target fails once (retried elsewhere, then ejected), the others answer.
      for (let i = 0; i < 9; i++) assert.equal((await request(`${server.url}/`)).status, 200);
      for (let i = 0; i < 4; i++) assert.equal((await request(`${server.url}/echo`, { method: 'POST', body: 'x' })).status, 200);
      for (let i = 0; i < 3; i++) assert.equal((await request(`${server.url}/fail`)).status, 500);
      for (let i = 0; i < 2; i++) assert.equal((await request(`${server.url}/`, { method: 'PROPFIND' })).status, 200);
      const limited = [];
      for (let i = 0; i < 3; i++) limited.push((await request(`${server.url}/`, { headers: { 'x-client': 'k' } })).status);
      assert.deepEqual(limited, [200, 200, 429]);
      for (let i = 0; i < 3; i++) assert.equal((await request(`${server.url}/cached`)).status, 200);

      const families = await scrape(`${server.url}/metrics`);
      for (const name of families.keys()) assert.match(name, /^proxy_balancer_[a-z_]+$/);
      checkHistograms(families);

      const upstream = a.hits + b.hits;
      // 9 + 4 + 3 + 2 + 2 (the rate limit let two through) + 1 (one cache miss) answered, plus the failed attempt on the dead target.
      assert.equal(upstream, 21);
      assert.equal(sum(families, 'proxy_balancer_requests_total'), upstream + 1);
      assert.equal(sum(families, 'proxy_balancer_request_duration_seconds_count', {}, 'proxy_balancer_request_duration_seconds'), upstream + 1);
      for (const backend of [a, b]) {
        assert.equal(sum(families, 'proxy_balancer_requests_total', { target: backend.url }), backend.hits, `requests to ${backend.url}`);
        assert.equal(
          sum(families, 'proxy_balancer_request_duration_seconds_count', { target: backend.url }, 'proxy_balancer_request_duration_seconds'),
          backend.hits,
        );
      }
      assert.equal(sum(families, 'proxy_balancer_requests_total', { target: dead, method: 'GET', code_class: 'error' }), 1);
      assert.equal(sum(families, 'proxy_balancer_requests_total', { method: 'GET', code_class: '2xx' }), 9 + 2 + 1);
      assert.equal(sum(families, 'proxy_balancer_requests_total', { method: 'GET', code_class: '5xx' }), 3);
      assert.equal(sum(families, 'proxy_balancer_requests_total', { method: 'POST', code_class: '2xx' }), 4);
      assert.equal(sum(families, 'proxy_balancer_requests_total', { method: 'OTHER' }), 2, 'PROPFIND is counted as OTHER');
      const methods = new Set(families.get('proxy_balancer_requests_total')!.samples.map((s) => s.labels.method));
      assert.deepEqual([...methods].sort(), ['GET', 'OTHER', 'POST']);

      assert.equal(sum(families, 'proxy_balancer_retries_total'), 1);
      assert.equal(sum(families, 'proxy_balancer_ejections_total', { target: dead }), 1);
      assert.equal(sum(families, 'proxy_balancer_ejections_total', { target: dead, reason: 'consecutive' }), 1);
      for (const reason of ['successRate', 'failurePercentage', 'latency']) {
        assert.equal(sum(families, 'proxy_balancer_ejections_total', { target: dead, reason }), 0, `${reason}: exported as 0`);
      }
      assert.equal(sum(families, 'proxy_balancer_ejections_total', { target: a.url }), 0);
      assert.equal(sum(families, 'proxy_balancer_target_up', { target: dead }), 0);
      assert.equal(sum(families, 'proxy_balancer_target_up', { target: a.url }), 1);
      assert.equal(sum(families, 'proxy_balancer_target_state', { target: dead, state: 'ejected' }), 1);
      assert.equal(sum(families, 'proxy_balancer_target_state', { target: dead }), 1, 'one state at a time');
      assert.equal(sum(families, 'proxy_balancer_in_flight'), 0);
      assert.equal(sum(families, 'proxy_balancer_panic'), 0);
      assert.equal(sum(families, 'proxy_balancer_unavailable_total'), 0);
      assert.equal(sum(families, 'proxy_balancer_rate_limited_total'), 1);
      const cache = lb.stats().cache!;
      assert.equal(sum(families, 'proxy_balancer_cache_hits_total'), 2);
      assert.equal(cache.hits, 2);
      assert.equal(sum(families, 'proxy_balancer_cache_misses_total'), cache.misses);
      assert.equal(sum(families, 'proxy_balancer_cache_stored_total'), 1);
      assert.equal(families.get('proxy_balancer_requests_total')!.type, 'counter');
      assert.equal(families.get('proxy_balancer_request_duration_seconds')!.type, 'histogram');
      assert.equal(families.get('proxy_balancer_in_flight')!.type, 'gauge');
      const le = families
        .get('proxy_balancer_request_duration_seconds')!
        .samples.filter((s) => s.labels.target === a.url && s.name.endsWith('_bucket'))
        .map((s) => s.labels.le);
      assert.deepEqual(le, ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);

      const head = await request(`${server.url}/metrics`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal((await request(`${server.url}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await lb.close();
      await closeAll(server, a, b);
    }
  });

  test('in-flight gauge, histogram buckets by duration, WebSocket tunnels, a removed target leaves the output', async () => {
    const a = await appBackend('a');
    const wss = new WebSocketServer({ noServer: true });
    wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
    a.server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
    const lb = loadBalance({ targets: [a.url], retry: false });
    const server = await front(lb, lb.metrics({ buckets: [0.05, 1] }));
    server.server.on('upgrade', lb.upgrade);
    try {
      const held = request(`${server.url}/hold`);
      await waitFor(() => lb.stats().inFlight === 1);
      let families = await scrape(`${server.url}/metrics`);
      assert.equal(sum(families, 'proxy_balancer_in_flight', { target: a.url }), 1);
      assert.equal(sum(families, 'proxy_balancer_requests_total'), 0, 'nothing ended yet');
      await delay(80);
      a.release();
      assert.equal((await held).status, 200);
      assert.equal((await request(`${server.url}/`)).status, 200);

      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const echoed = new Promise((resolve) => ws.once('message', resolve));
      ws.send('hi');
      await echoed;
      ws.close();
      await waitFor(() => lb.stats().inFlight === 0);

      families = await scrape(`${server.url}/metrics`);
      checkHistograms(families);
      const bucket = (le: string) =>
        sum(families, 'proxy_balancer_request_duration_seconds_bucket', { target: a.url, le }, 'proxy_balancer_request_duration_seconds');
      assert.equal(bucket('0.05'), 1, 'the quick request only');
      assert.equal(bucket('1'), 2, 'the held one took more than 50 ms');
      assert.equal(bucket('+Inf'), 2);
      assert.ok(sum(families, 'proxy_balancer_request_duration_seconds_sum', { target: a.url }, 'proxy_balancer_request_duration_seconds') >= 0.08);
      assert.equal(sum(families, 'proxy_balancer_in_flight', { target: a.url }), 0);
      assert.equal(sum(families, 'proxy_balancer_websocket_tunnels_total', { target: a.url }), 1);
      assert.equal(sum(families, 'proxy_balancer_requests_total'), 2, 'tunnels are not requests');
      assert.ok(!families.has('proxy_balancer_cache_hits_total'), 'no cache families without a cache');
      assert.ok(!families.has('proxy_balancer_rate_limited_total'), 'no rate-limit family without a rate limit');

      lb.pool.remove(a.url);
      families = await scrape(`${server.url}/metrics`);
      assert.ok(
        families.get('proxy_balancer_requests_total')!.samples.every((s) => s.labels.target !== a.url),
        'a removed target leaves the output',
      );
      assert.equal(families.get('proxy_balancer_target_up')!.samples.length, 0);
    } finally {
      await lb.close();
      wss.close();
      await closeAll(server, a);
    }
  });

  test("registers into a prom-client registry next to the app's own metrics, several balancers told apart by labels", async () => {
    const a = await appBackend('a');
    const b = await appBackend('b');
    const registry = new Registry();
    const mine = new Counter({ name: 'app_things_total', help: 'Things the app did.', registers: [registry] });
    mine.inc(3);
    const one = loadBalance({ targets: [a.url] });
    const two = loadBalance({ targets: [b.url] });
    const metrics = one.metrics({ registry, labels: { balancer: 'one' } });
    two.metrics({ registry, labels: { balancer: 'two' } });
    assert.throws(() => two.metrics({ registry, labels: { balancer: 'one' } }), /same labels/);
    const s1 = await front(one, metrics);
    const s2 = await listen(two);
    try {
      for (let i = 0; i < 3; i++) await request(`${s1.url}/`);
      for (let i = 0; i < 2; i++) await request(`${s2.url}/`);
      const families = await scrape(`${s1.url}/metrics`);
      checkHistograms(families);
      assert.equal(sum(families, 'app_things_total'), 3, "the app's own metric is served too");
      assert.equal(sum(families, 'proxy_balancer_requests_total', { balancer: 'one', target: a.url, code_class: '2xx' }), 3);
      assert.equal(sum(families, 'proxy_balancer_requests_total', { balancer: 'two', target: b.url, code_class: '2xx' }), 2);
      assert.equal(sum(families, 'proxy_balancer_request_duration_seconds_count', { balancer: 'two' }, 'proxy_balancer_request_duration_seconds'), 2);
      assert.equal(sum(families, 'proxy_balancer_target_up', { balancer: 'one' }), 1);
      const json = await registry.getMetricsAsJSON();
      assert.ok(json.some((m) => m.name === 'proxy_balancer_in_flight'));

      await one.close();
      let text = await registry.metrics();
      assert.match(text, /balancer="two"/);
      assert.doesNotMatch(text, /balancer="one"/, 'a closed balancer leaves the registry');
      await two.close();
      text = await registry.metrics();
      assert.doesNotMatch(text, /proxy_balancer_/, 'the families go once no balancer is left');
      assert.match(text, /app_things_total 3/);
    } finally {
      await Promise.all([one.close(), two.close()]);
      await closeAll(s1, s2, a, b);
    }
  });

  test('strategy gauges: the score and latency estimate peakEwma balances by, the score of leastRequest, none for round robin', async () => {
    const a = await appBackend('a');
    const b = await appBackend('b');
    const ewma = loadBalance({ targets: [a.url, b.url], strategy: peakEwma({ defaultLatency: 0 }) });
    const least = loadBalance({ targets: [a.url, b.url], strategy: leastRequest() });
    const plain = loadBalance({ targets: [a.url, b.url] });
    const s1 = await front(ewma, ewma.metrics());
    const s2 = await front(least, least.metrics());
    const s3 = await front(plain, plain.metrics());
    try {
      for (let i = 0; i < 10; i++) assert.equal((await request(`${s1.url}/x`)).status, 200);
      const families = await scrape(`${s1.url}/metrics`);
      for (const t of ewma.stats().targets) {
        const latency = sum(families, 'proxy_balancer_strategy_latency_seconds', { target: t.url });
        // A default of 0 makes an unsampled target the cheapest, so both were sampled.
        assert.ok(latency > 0, `a measured estimate replaced the default: ${latency}`);
        // Read twice, a few ms apart (the estimate fades by 1/10000 per ms in between); stats() rounds to 0.01 ms.
        assert.ok(Math.abs(latency - t.balancing!.latency! / 1000) < 0.00001 + 0.01 * latency, `${latency} vs ${t.balancing!.latency}`);
        const score = sum(families, 'proxy_balancer_strategy_score', { target: t.url });
        assert.ok(Math.abs(score - t.balancing!.score) < 0.01 * score, `${score} vs ${t.balancing!.score}`);
      }
      const leastFamilies = await scrape(`${s2.url}/metrics`);
      assert.equal(sum(leastFamilies, 'proxy_balancer_strategy_score', { target: a.url }), 1, '(0 + 1)^1 / 1');
      assert.equal(leastFamilies.get('proxy_balancer_strategy_latency_seconds')!.samples.length, 0);
      const plainFamilies = await scrape(`${s3.url}/metrics`);
      assert.equal(plainFamilies.has('proxy_balancer_strategy_score'), false);
    } finally {
      await Promise.all([ewma.close(), least.close(), plain.close()]);
      await closeAll(s1, s2, s3, a, b);
    }
  });

  test('ejections_total counts by reason: a latency ejection', async () => {
    const fast = await Promise.all([appBackend('a'), appBackend('b')]);
    const slow = await listen((req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), 40);
    });
    const lb = loadBalance({
      targets: [fast[0].url, slow.url, fast[1].url],
      outlierDetection: { interval: 200, baseEjectionTime: 60_000, latency: { requestVolume: 5 } },
    });
    const reasons: string[] = [];
    lb.on('ejected', (_t, info) => reasons.push(info.reason));
    const server = await front(lb, lb.metrics());
    try {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
      const end = Date.now() + 4000;
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          while (reasons.length === 0 && Date.now() < end) await request(`${server.url}/x`, { agent });
        }),
      );
      agent.destroy();
      assert.deepEqual(reasons, ['latency']);
      const families = await scrape(`${server.url}/metrics`);
      assert.equal(sum(families, 'proxy_balancer_ejections_total', { target: slow.url, reason: 'latency' }), 1);
      assert.equal(sum(families, 'proxy_balancer_ejections_total', { target: slow.url, reason: 'consecutive' }), 0);
      assert.equal(sum(families, 'proxy_balancer_ejections_total', { reason: 'latency' }), 1);
      assert.equal(sum(families, 'proxy_balancer_target_state', { target: slow.url, state: 'ejected' }), 1);
    } finally {
      await lb.close();
      await closeAll(server, slow, ...fast);
    }
  });

  test('options are checked', async () => {
    const lb = loadBalance({ targets: ['http://127.0.0.1:1'] });
    try {
      assert.throws(() => lb.metrics({ bucket: [1] } as never), /unknown option "bucket"/);
      assert.throws(() => lb.metrics({ labels: { target: 'x' } }), /not a usable label name/);
      assert.throws(() => lb.metrics({ labels: { 'bad-name': 'x' } }), /not a usable label name/);
      assert.throws(() => lb.metrics({ labels: { ok: 1 as never } }), /options\.labels\.ok must be a string/);
      assert.throws(() => lb.metrics({ buckets: [1, 0.5] }), /ascending/);
      assert.throws(() => lb.metrics({ buckets: [] }), /ascending/);
      assert.throws(() => lb.metrics({ registry: {} as never }), /prom-client Registry/);
      lb.metrics({ buckets: [0.1, 1] });
      assert.throws(() => lb.metrics({ buckets: [0.2, 1] }), /differ/);
      lb.metrics({ buckets: [0.1, 1] });
      lb.metrics();
    } finally {
      await lb.close();
    }
  });
});
