import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hash32, hash32Words } from '../lib/strategies/hash.js';
import type { Outcome, Strategy } from '../lib/strategies/strategy.js';
import {
  consistentHash,
  ipHash,
  leastConnections,
  leastRequest,
  peakEwma,
  powerOfTwoChoices,
  random,
  roundRobin,
  weightedRoundRobin,
} from '../lib/strategies/index.js';
import { Target } from '../lib/target.js';
import { benchStrategies } from './bench/strategies.js';

const OK: Outcome = { status: 200, latency: 1, error: undefined };

function makeTargets(weights: readonly number[], base = 0): Target[] {
  return weights.map((weight, i) => new Target(new URL(`http://127.0.0.1:${3000 + base + i}`), weight));
}

function snapshot(targets: readonly Target[]): readonly Target[] {
  return Object.freeze([...targets]);
}

function request(url = '/x', headers: Record<string, string | string[]> = {}, ip = '10.0.0.1'): IncomingMessage {
  return { url, headers, socket: { remoteAddress: ip } } as unknown as IncomingMessage;
}

const REQ = request();

/** What the balancer does around a pick: count the request in, then tell the strategy. */
function start(strategy: Strategy, targets: readonly Target[], req = REQ): Target {
  const target = strategy.pick(targets, req);
  assert.ok(target);
  target.inFlight++;
  target.total++;
  strategy.onStart?.(target, req);
  return target;
}

function end(strategy: Strategy, target: Target): void {
  target.inFlight--;
  strategy.onEnd?.(target, OK);
}

/** Pick, start and end at once: requests that never overlap. */
function sequence(strategy: Strategy, targets: readonly Target[], picks: number): Target[] {
  const out: Target[] = [];
  for (let i = 0; i < picks; i++) {
    const target = start(strategy, targets);
    end(strategy, target);
    out.push(target);
  }
  return out;
}

function counts(picked: readonly Target[], targets: readonly Target[]): number[] {
  return targets.map((target) => picked.filter((t) => t === target).length);
}

function longestRun(picked: readonly Target[], target: Target): number {
  let longest = 0;
  let run = 0;
  for (const t of picked) {
    run = t === target ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/** NGINX's smooth weighted round robin (ngx_http_upstream_get_peer), the O(n) reference. */
function nginxSmoothWrr(targets: readonly Target[], picks: number): Target[] {
  const current = targets.map(() => 0);
  const total = targets.reduce((sum, t) => sum + t.weight, 0);
  const out: Target[] = [];
  for (let n = 0; n < picks; n++) {
    let best = 0;
    for (let i = 0; i < targets.length; i++) {
      current[i] += targets[i].weight;
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    out.push(targets[best]);
  }
  return out;
}

/** Maps each key to the target it is sent to. */
function assignments(strategy: Strategy, targets: readonly Target[], keys: readonly string[]): Map<string, Target> {
  return new Map(keys.map((key) => [key, strategy.pick(targets, request(key))!]));
}

const KEYS = Array.from({ length: 10_000 }, (_, i) => `/users/${i}/profile`);

test('hash32 is MurmurHash3 x86_32 of UTF-16LE', () => {
  assert.equal(hash32(''), 0);
  assert.equal(hash32('', 1), 0x514e28b7);
  assert.equal(hash32('\u0000\u0000'), 0x2362f9de);
  assert.equal(hash32('\u4321\u8765'), 0xf55b516b);
  assert.equal(hash32('\u4321'), 0xa0f7b07a);
  assert.notEqual(hash32('abc', 1), hash32('abc', 2));
});

test('hash32Words hashes the little-endian bytes of its words', () => {
  const words = [0x87654321, 0x00000001, 0xdeadbeef];
  const asString = String.fromCharCode(...words.flatMap((w) => [w & 0xffff, w >>> 16]));
  assert.equal(hash32Words(words[0], words[1], words[2], 7), hash32(asString, 7));
});

test('hash32 spreads near-identical keys evenly', () => {
  const buckets = new Array<number>(16).fill(0);
  let flipped = 0;
  for (let i = 0; i < 16_000; i++) {
    const h = hash32(`key#${i}`);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
    buckets[h >>> 28]++;
    flipped += popcount(h ^ hash32(`key#${i + 1}`));
  }
  for (const bucket of buckets) assert.ok(Math.abs(bucket - 1000) < 150, `bucket ${bucket}`);
  assert.ok(Math.abs(flipped / 16_000 - 16) < 0.5, `average flipped bits ${flipped / 16_000}`);
});

function popcount(n: number): number {
  let bits = 0;
  for (let v = n >>> 0; v !== 0; v >>>= 1) bits += v & 1;
  return bits;
}

test('round robin: every target exactly once per window, weights ignored', () => {
  const targets = snapshot(makeTargets([1, 5, 1, 2]));
  const picked = sequence(roundRobin(), targets, 400);
  for (let window = 0; window < 400; window += 4) {
    assert.equal(new Set(picked.slice(window, window + 4)).size, 4);
  }
  assert.deepEqual(counts(picked, targets), [100, 100, 100, 100]);
});

test('round robin: keeps rotating across snapshot changes', () => {
  const strategy = roundRobin();
  const targets = makeTargets([1, 1, 1, 1]);
  const picked: Target[] = [];
  for (let i = 0; i < 12; i++) picked.push(strategy.pick(snapshot(targets), REQ)!);
  assert.deepEqual(counts(picked, targets), [3, 3, 3, 3]);
  assert.deepEqual(picked.slice(0, 4), targets);
});

for (const weights of [
  [5, 1, 1],
  [3, 2, 1, 7],
  [1, 1, 1],
  [10, 3, 3, 1, 1],
]) {
  test(`weighted round robin [${weights}]: exact shares in every window of W picks`, () => {
    const targets = snapshot(makeTargets(weights));
    const total = weights.reduce((a, b) => a + b, 0);
    const picked = sequence(weightedRoundRobin(), targets, total * 20);
    for (let from = 0; from + total <= picked.length; from++) {
      assert.deepEqual(counts(picked.slice(from, from + total), targets), weights, `window at ${from}`);
    }
  });
}

for (const weights of [
  [5, 1, 1],
  [3, 2, 1, 7],
  [2, 1],
  [100, 1],
  [10, 3, 3, 1, 1],
  [1, 1, 1],
  [4, 4, 2, 2, 1, 1, 1],
]) {
  test(`weighted round robin [${weights}]: runs no longer than NGINX smooth WRR's + 1`, () => {
    const targets = snapshot(makeTargets(weights));
    const total = weights.reduce((a, b) => a + b, 0);
    const picked = sequence(weightedRoundRobin(), targets, total * 20);
    const reference = nginxSmoothWrr(targets, total * 20);
    for (const target of targets) {
      assert.ok(
        longestRun(picked, target) <= longestRun(reference, target) + 1,
        `weight ${target.weight}: run ${longestRun(picked, target)} vs NGINX ${longestRun(reference, target)}`,
      );
    }
  });
}

test('weighted round robin: fractional weights keep their ratio', () => {
  const targets = snapshot(makeTargets([0.5, 1.5]));
  assert.deepEqual(counts(sequence(weightedRoundRobin(), targets, 400), targets), [100, 300]);
});

test('weighted round robin: follows weight changes in a new snapshot', () => {
  const strategy = weightedRoundRobin();
  const targets = makeTargets([1, 1]);
  assert.deepEqual(counts(sequence(strategy, snapshot(targets), 10), targets), [5, 5]);
  targets[1].weight = 4;
  const next = snapshot(targets);
  assert.deepEqual(counts(sequence(strategy, next, 50), targets), [10, 40]);
});

test('weighted round robin: equal weights keep rotating across snapshot changes', () => {
  const strategy = weightedRoundRobin();
  const targets = makeTargets([2, 2, 2]);
  const picked: Target[] = [];
  for (let i = 0; i < 30; i++) picked.push(strategy.pick(snapshot(targets), REQ)!);
  assert.deepEqual(counts(picked, targets), [10, 10, 10]);
});

test('least connections: picks the lowest inFlight / weight', () => {
  const strategy = leastConnections();
  const targets = makeTargets([1, 1, 1]);
  targets[0].inFlight = 3;
  targets[1].inFlight = 1;
  targets[2].inFlight = 2;
  const ready = snapshot(targets);
  assert.equal(start(strategy, ready), targets[1]);
  // Now 3, 2, 2: the tie goes to the target not started most recently.
  assert.equal(start(strategy, ready), targets[2]);
  assert.equal(start(strategy, ready), targets[1]);
  end(strategy, targets[0]);
  end(strategy, targets[0]);
  assert.equal(strategy.pick(ready, REQ), targets[0]);
});

test('least connections: rotates among equally loaded targets', () => {
  const targets = snapshot(makeTargets([1, 1, 1, 1, 1]));
  const picked = sequence(leastConnections(), targets, 500);
  for (let window = 0; window < 500; window += 5) {
    assert.equal(new Set(picked.slice(window, window + 5)).size, 5);
  }
});

test('least connections: held requests spread in proportion to weight', () => {
  const strategy = leastConnections();
  const targets = makeTargets([1, 2, 3]);
  const ready = snapshot(targets);
  for (let i = 0; i < 600; i++) start(strategy, ready);
  assert.deepEqual(
    targets.map((t) => t.inFlight),
    [100, 200, 300],
  );
  // Ends on the heaviest make it the least loaded again.
  for (let i = 0; i < 30; i++) end(strategy, targets[2]);
  assert.equal(strategy.pick(ready, REQ), targets[2]);
});

test('least connections: rebuilds from live counters when the snapshot changes', () => {
  const strategy = leastConnections();
  const targets = makeTargets([1, 1, 1]);
  const first = snapshot(targets.slice(0, 2));
  const a = start(strategy, first);
  const b = start(strategy, first);
  start(strategy, first);
  // A new target joins with nothing in flight: the very next pick must see it.
  const second = snapshot(targets);
  assert.equal(strategy.pick(second, REQ), targets[2]);
  // Ends for targets that left the snapshot are ignored.
  const third = snapshot([targets[2]]);
  assert.equal(strategy.pick(third, REQ), targets[2]);
  end(strategy, a);
  end(strategy, b);
  assert.equal(strategy.pick(third, REQ), targets[2]);
  assert.notEqual(strategy.pick(second, REQ), targets[0]);
});

test('least connections: counters changed before a rebuild are picked up', () => {
  const strategy = leastConnections();
  const targets = makeTargets([1, 1]);
  start(strategy, snapshot(targets));
  targets[0].inFlight = 5;
  targets[1].inFlight = 0;
  assert.equal(strategy.pick(snapshot(targets), REQ), targets[1]);
});

test('random: shares follow weights', () => {
  const targets = snapshot(makeTargets([1, 2, 7]));
  const strategy = random();
  const picked = Array.from({ length: 100_000 }, () => strategy.pick(targets, REQ)!);
  const shares = counts(picked, targets).map((n) => n / 100_000);
  [0.1, 0.2, 0.7].forEach((expected, i) => assert.ok(Math.abs(shares[i] - expected) < 0.01, `share ${shares[i]}`));
});

test('random: equal weights are uniform, and a new snapshot with new weights is followed', () => {
  const strategy = random();
  const targets = makeTargets([1, 1, 1, 1]);
  const equal = counts(
    Array.from({ length: 100_000 }, () => strategy.pick(snapshot(targets), REQ)!),
    targets,
  );
  for (const n of equal) assert.ok(Math.abs(n / 100_000 - 0.25) < 0.01);
  targets[3].weight = 0.001;
  const ready = snapshot(targets);
  const skewed = counts(
    Array.from({ length: 100_000 }, () => strategy.pick(ready, REQ)!),
    targets,
  );
  assert.ok(skewed[3] < 200, `light target picked ${skewed[3]} times`);
});

test('power of two choices: prefers the less loaded target', () => {
  const strategy = powerOfTwoChoices();
  const targets = makeTargets([1, 1, 1]);
  targets[0].inFlight = 10;
  const ready = snapshot(targets);
  const picked = Array.from({ length: 10_000 }, () => strategy.pick(ready, REQ)!);
  const [loaded, a, b] = counts(picked, targets);
  assert.equal(loaded, 0);
  assert.ok(Math.abs(a - b) < 600, `${a} vs ${b}`);
});

test('power of two choices: weighs load, balances held requests, handles one target', () => {
  const strategy = powerOfTwoChoices();
  const targets = makeTargets([1, 4]);
  targets[0].inFlight = 1;
  targets[1].inFlight = 3;
  assert.equal(strategy.pick(snapshot(targets), REQ), targets[1]);
  const many = makeTargets(Array.from({ length: 20 }, () => 1));
  const ready = snapshot(many);
  for (let i = 0; i < 2000; i++) start(strategy, ready);
  const loads = many.map((t) => t.inFlight);
  // Uniform random would leave a spread of about 35 here; two choices keep it to a handful.
  assert.ok(Math.max(...loads) - Math.min(...loads) < 14, `loads ${loads}`);
  const [only] = makeTargets([1]);
  assert.equal(strategy.pick(snapshot([only]), REQ), only);
});

test('consistent hash: same key, same target, whatever the snapshot order', () => {
  const strategy = consistentHash({ key: 'path' });
  const targets = makeTargets(Array.from({ length: 10 }, () => 1));
  const before = assignments(strategy, snapshot(targets), KEYS);
  assert.deepEqual(assignments(strategy, snapshot(targets), KEYS), before);
  const shuffled = snapshot([...targets].reverse());
  assert.deepEqual(assignments(strategy, shuffled, KEYS), before);
  assert.deepEqual(assignments(consistentHash({ key: 'path' }), shuffled, KEYS), before);
  const spread = counts([...before.values()], targets);
  for (const n of spread) assert.ok(n > 500 && n < 1600, `spread ${spread}`);
});

test('consistent hash: adding an 11th target only moves keys onto it', () => {
  const strategy = consistentHash({ key: 'path' });
  const targets = makeTargets(Array.from({ length: 11 }, () => 1));
  const before = assignments(strategy, snapshot(targets.slice(0, 10)), KEYS);
  const after = assignments(strategy, snapshot(targets), KEYS);
  const moved = KEYS.filter((key) => before.get(key) !== after.get(key));
  for (const key of moved) assert.equal(after.get(key), targets[10]);
  const fraction = moved.length / KEYS.length;
  assert.ok(fraction > 0.04 && fraction < 0.15, `remapped ${fraction}`);
});

test('consistent hash: removing a target only moves its own keys', () => {
  const strategy = consistentHash({ key: 'path' });
  const targets = makeTargets(Array.from({ length: 10 }, () => 1));
  const before = assignments(strategy, snapshot(targets), KEYS);
  const removed = targets[3];
  const after = assignments(strategy, snapshot(targets.filter((t) => t !== removed)), KEYS);
  for (const key of KEYS) {
    if (before.get(key) === removed) assert.notEqual(after.get(key), removed);
    else assert.equal(after.get(key), before.get(key));
  }
});

test('consistent hash: weight scales a target’s share of keys', () => {
  const targets = snapshot(makeTargets([1, 1, 3]));
  const spread = counts([...assignments(consistentHash({ key: 'path' }), targets, KEYS).values()], targets);
  const share = spread[2] / KEYS.length;
  assert.ok(share > 0.5 && share < 0.7, `heavy share ${share}`);
});

test('consistent hash: path ignores the query; url does not', () => {
  const targets = snapshot(makeTargets(Array.from({ length: 50 }, () => 1)));
  const byPath = consistentHash({ key: 'path' });
  const byUrl = consistentHash({ key: 'url' });
  const queries = Array.from({ length: 50 }, (_, i) => `/a/b?page=${i}`);
  assert.equal(new Set(queries.map((url) => byPath.pick(targets, request(url)))).size, 1);
  assert.ok(new Set(queries.map((url) => byUrl.pick(targets, request(url)))).size > 10);
});

test('consistent hash: header and cookie keys', () => {
  const targets = snapshot(makeTargets(Array.from({ length: 50 }, () => 1)));
  const byHeader = consistentHash({ key: { header: 'X-Tenant' } });
  const tenant = (value: string | string[], url: string) => byHeader.pick(targets, request(url, { 'x-tenant': value }));
  const acme = tenant('acme', '/1');
  for (let i = 0; i < 20; i++) assert.equal(tenant('acme', `/${i}`), acme);
  assert.equal(tenant(['acme', 'other'], '/z'), acme);
  assert.ok(new Set(Array.from({ length: 50 }, (_, i) => tenant(`t${i}`, '/'))).size > 10);

  const byCookie = consistentHash({ key: { cookie: 'sid' } });
  const session = (cookie: string) => byCookie.pick(targets, request('/', { cookie }));
  const sid = session('sid=abc123');
  assert.equal(session('theme=dark; sid=abc123'), sid);
  assert.equal(session('xsid=1;sid=abc123 ;other=2'), sid);
  assert.equal(session('sidx=9; sid=abc123'), sid);
  assert.ok(new Set(Array.from({ length: 50 }, (_, i) => session(`sid=s${i}`))).size > 10);
});

test('consistent hash: function keys', () => {
  const targets = snapshot(makeTargets(Array.from({ length: 20 }, () => 1)));
  const strategy = consistentHash({ key: (req) => req.headers.host?.split('.')[0] });
  const host = (h: string, url: string) => strategy.pick(targets, request(url, { host: h }));
  assert.equal(host('a.example.com', '/1'), host('a.other.net', '/2'));
});

test('consistent hash: requests without a key rotate over the snapshot', () => {
  const targets = snapshot(makeTargets([1, 1, 1]));
  for (const key of [{ header: 'x-user' }, { cookie: 'sid' }, () => ''] as const) {
    const strategy = consistentHash({ key });
    const picked = Array.from({ length: 9 }, () => strategy.pick(targets, request('/', { cookie: 'other=1' }))!);
    assert.deepEqual(counts(picked, targets), [3, 3, 3]);
    assert.deepEqual(picked.slice(0, 3), targets);
  }
});

test('consistent hash: invalid options throw naming the option', () => {
  const bad = (options: unknown) => () => consistentHash(options as never);
  assert.throws(bad(undefined), { name: 'TypeError', message: /consistentHash: options/ });
  assert.throws(bad({}), { name: 'TypeError', message: /options\.key must be/ });
  assert.throws(bad({ key: 'host' }), { name: 'TypeError', message: /options\.key must be/ });
  assert.throws(bad({ key: { header: '' } }), { name: 'TypeError', message: /options\.key must be/ });
  assert.throws(bad({ key: { header: 'a', cookie: 'b' } }), { name: 'TypeError', message: /options\.key must be/ });
  for (const replicas of [0, -1, 1.5, '160', Number.NaN]) {
    assert.throws(bad({ key: 'path', replicas }), {
      name: 'TypeError',
      message: /consistentHash: options\.replicas must be a positive integer/,
    });
  }
  assert.throws(() => ipHash({ replicas: 0 }), { name: 'TypeError', message: /ipHash: options\.replicas/ });
});

test('ip hash: sticky per client address', () => {
  const strategy = ipHash();
  assert.equal(strategy.name, 'ip-hash');
  const targets = snapshot(makeTargets(Array.from({ length: 20 }, () => 1)));
  const from = (ip: string, url: string) => strategy.pick(targets, request(url, {}, ip));
  const first = from('192.168.1.7', '/a');
  for (let i = 0; i < 20; i++) assert.equal(from('192.168.1.7', `/${i}`), first);
  const clients = new Set(Array.from({ length: 200 }, (_, i) => from(`10.0.${i >> 8}.${i & 255}`, '/')));
  assert.ok(clients.size > 15);
});

const FACTORIES: ReadonlyArray<[string, () => Strategy]> = [
  ['round-robin', roundRobin],
  ['weighted-round-robin', weightedRoundRobin],
  ['least-connections', leastConnections],
  ['random', random],
  ['power-of-two-choices', powerOfTwoChoices],
  ['least-request', () => leastRequest()],
  ['peak-ewma', () => peakEwma()],
  ['consistent-hash', () => consistentHash({ key: 'path' })],
  ['ip-hash', () => ipHash()],
];

test('every strategy follows snapshot replacement', () => {
  for (const [name, factory] of FACTORIES) {
    const strategy = factory();
    assert.equal(strategy.name, name);
    const old = makeTargets([1, 2, 3]);
    const fresh = makeTargets([1, 2], 10);
    sequence(strategy, snapshot(old), 50);
    const next = snapshot(fresh);
    for (let i = 0; i < 100; i++) {
      const target = start(strategy, next, request(`/k${i}`, {}, `10.1.0.${i}`));
      assert.ok(fresh.includes(target), `${name} picked a target outside the snapshot`);
    }
  }
});

test('10,000 targets: every strategy picks, and the hash ring builds in under 2 s', () => {
  const targets = snapshot(makeTargets(Array.from({ length: 10_000 }, (_, i) => 1 + (i % 3))));
  for (const [name, factory] of FACTORIES) {
    const strategy = factory();
    const began = performance.now();
    const target = start(strategy, targets, request('/first'));
    const elapsed = performance.now() - began;
    assert.ok(targets.includes(target), name);
    if (name === 'consistent-hash') assert.ok(elapsed < 2000, `ring built in ${elapsed} ms`);
    for (let i = 0; i < 1000; i++) end(strategy, start(strategy, targets, request(`/k${i}`)));
    end(strategy, target);
  }
});

test('benchmark runs every strategy at every size', () => {
  const rows = benchStrategies(200);
  assert.equal(rows.length, FACTORIES.length * 3);
  for (const row of rows) assert.ok(Number.isFinite(row.nsPerPick) && row.nsPerPick > 0, row.strategy);
});
