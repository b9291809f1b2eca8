import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { loadBalance, responseCache, roundRobin, type LoadBalancer } from 'proxy-balancer';
import { backend, closeAll, listen, request, type Reply, type TestServer, cacheOutcome } from './helpers.js';

const SECRET = 'correct horse battery staple';

/** The `lb` cookie a response sets, if any: its value and its attributes. */
function setCookie(reply: Reply, name = 'lb'): { value: string; attributes: string } | undefined {
  for (const field of reply.headers['set-cookie'] ?? []) {
    if (!field.startsWith(`${name}=`)) continue;
    const end = field.indexOf(';');
    return { value: field.slice(name.length + 1, end === -1 ? undefined : end), attributes: end === -1 ? '' : field.slice(end) };
  }
  return undefined;
}

/** A browser-like client: sends its `lb` cookie and takes any new one a response sets. */
class Client {
  cookie: string | undefined;
  constructor(readonly url: string) {}
  async get(path = '/'): Promise<Reply> {
    const reply = await request(`${this.url}${path}`, { headers: this.cookie === undefined ? {} : { cookie: `theme=dark; lb=${this.cookie}` } });
    const set = setCookie(reply);
    if (set !== undefined) this.cookie = set.value;
    return reply;
  }
}

/** A backend answering HTTP with its name, and WebSocket messages with `name:message`. */
async function wsBackend(name: string): Promise<TestServer> {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`${name}:${data}`)));
  const server = await listen((_req, res) => res.end(name));
  server.server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  const close = server.close;
  return Object.assign(server, { close: () => (wss.close(), close()) });
}

async function withPool(names: string[], options: Partial<Parameters<typeof loadBalance>[0]> = {}) {
  const backends = await Promise.all(names.map(backend));
  const lb = loadBalance({ targets: backends.map((b) => b.url), affinity: { cookie: 'lb', secret: SECRET }, ...options });
  const front = await listen(lb);
  return {
    backends,
    lb,
    front,
    close: async () => {
      await lb.close();
      await closeAll(front, ...backends);
    },
  };
}

describe('session affinity by cookie', () => {
  test('the first request is placed by the strategy and cookied; later ones stick to that target', async () => {
    const { lb, front, backends, close } = await withPool(['a', 'b', 'c'], { strategy: roundRobin() });
    try {
      const first = await request(`${front.url}/`);
      const cookie = setCookie(first);
      assert.ok(cookie, 'the first response sets the affinity cookie');
      assert.match(cookie.value, /^[A-Za-z0-9_-]{22}$/, '128 bits of HMAC, base64url');
      for (const b of backends) {
        assert.ok(!cookie.value.includes(String(b.port)) && !cookie.value.includes('127'), 'the value reveals no address');
      }
      assert.equal(cookie.attributes, '; Path=/; HttpOnly; SameSite=Lax');
      // Round robin alone would spread these over a, b and c.
      const seen = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const reply = await request(`${front.url}/`, { headers: { cookie: `lb=${cookie.value}` } });
        seen.add(reply.body);
        assert.equal(setCookie(reply), undefined, 'a request already on its target is not cookied again');
      }
      assert.deepEqual([...seen], [first.body]);
      // Cookie-less clients are still spread by the strategy, each one told where it landed.
      const placed = new Map<string, string>();
      for (let i = 0; i < 3; i++) {
        const reply = await request(`${front.url}/`);
        placed.set(reply.body, setCookie(reply)!.value);
      }
      assert.equal(placed.size, 3, 'new clients land on every target');
      assert.equal(new Set(placed.values()).size, 3, 'one cookie value per target');
      assert.equal(placed.get(first.body), cookie.value, 'the value depends only on the target');
      assert.deepEqual(lb.stats().affinity, { sticky: 30, placed: 4, replaced: 0 });
      const observe = await listen(lb.metrics());
      try {
        const text = (await request(observe.url)).body;
        for (const [result, n] of [
          ['sticky', 30],
          ['placed', 4],
          ['replaced', 0],
        ])
          assert.match(text, new RegExp(`^proxy_balancer_affinity_total\\{result="${result}"\\} ${n}$`, 'm'));
      } finally {
        await observe.close();
      }
    } finally {
      await close();
    }
  });

  test('the cookie is found among others, and only an exact name matches', async () => {
    const { front, close } = await withPool(['a', 'b']);
    try {
      const first = await request(`${front.url}/`);
      const value = setCookie(first)!.value;
      const other = first.body === 'a' ? 'b' : 'a';
      for (const header of [`lb=${value}`, `x=1; lb=${value}`, `xlb=zzz;lb=${value} ; y=2`, `a=lb=zzz; lb=${value}`]) {
        for (let i = 0; i < 2; i++) {
          const reply = await request(`${front.url}/`, { headers: { cookie: header } });
          assert.equal(reply.body, first.body, header);
        }
      }
      // `xlb=` and a value `lb=...` inside another cookie are not the affinity cookie.
      const bodies = new Set<string>();
      for (let i = 0; i < 4; i++) bodies.add((await request(`${front.url}/`, { headers: { cookie: `xlb=${value}; q=lb=${value}` } })).body);
      assert.ok(bodies.has(other), 'placed by round robin, not stuck');
    } finally {
      await close();
    }
  });

  test('the sticky target dying: idempotent requests fail over, none lost, and the client is re-cookied', async () => {
    const names = ['a', 'b', 'c'];
    const { lb, front, backends, close } = await withPool(names);
    try {
      const client = new Client(front.url);
      const first = await client.get();
      const before = client.cookie;
      const bodies: string[] = [];
      let failed = 0;
      const total = 200;
      for (let i = 0; i < total; i++) {
        if (i === 50) await backends[names.indexOf(first.body)]!.close();
        const reply = await client.get();
        if (reply.status !== 200) failed++;
        bodies.push(reply.body);
      }
      assert.equal(failed, 0, `requests lost while the sticky target died: ${failed} of ${total}`);
      assert.ok(
        bodies.slice(0, 50).every((b) => b === first.body),
        'sticky before',
      );
      const after = bodies.slice(50);
      assert.ok(!after.includes(first.body), 'nothing served by the dead target');
      assert.equal(new Set(after).size, 1, 'the client sticks to its new target');
      assert.notEqual(client.cookie, before, 'and carries its new cookie');
      assert.equal(lb.stats().unavailable, 0);
      assert.ok(lb.stats().retries >= 1, 'the first request after the death was retried elsewhere');
    } finally {
      await close();
    }
  });

  test('the sticky target dying under concurrent clients: no idempotent request lost', async () => {
    const names = ['a', 'b', 'c'];
    const { front, backends, close } = await withPool(names);
    try {
      const clients = Array.from({ length: 30 }, () => new Client(front.url));
      await Promise.all(clients.map((c) => c.get()));
      const doomed = clients[0]!.cookie;
      const victims = clients.filter((c) => c.cookie === doomed);
      const rounds = 20;
      let failed = 0;
      let total = 0;
      let dead = '';
      await Promise.all(
        clients.map(async (client, i) => {
          for (let r = 0; r < rounds; r++) {
            if (i === 0 && r === 5) {
              dead = (await client.get()).body;
              total++;
              await backends[names.indexOf(dead)]!.close();
              continue;
            }
            const reply = await client.get();
            total++;
            if (reply.status !== 200) failed++;
          }
        }),
      );
      assert.equal(failed, 0, `requests lost while the sticky target died: ${failed} of ${total}`);
      assert.equal(victims.length, 10);
      assert.ok(
        victims.every((c) => c.cookie !== doomed),
        'its clients were re-cookied',
      );
      const after = await Promise.all(victims.map((c) => c.get()));
      assert.ok(
        after.every((r) => r.status === 200 && r.body !== dead),
        'and now stick elsewhere',
      );
    } finally {
      await close();
    }
  });

  test('forged and stale cookies are ignored: placed afresh and re-cookied, never a 503', async () => {
    const names = ['a', 'b'];
    const { lb, front, backends, close } = await withPool(names);
    try {
      const forged = await request(`${front.url}/`, { headers: { cookie: 'lb=AAAAAAAAAAAAAAAAAAAAAA' } });
      assert.equal(forged.status, 200);
      const fresh = setCookie(forged);
      assert.ok(fresh && fresh.value !== 'AAAAAAAAAAAAAAAAAAAAAA', 'a forged cookie is replaced');
      // Stale: its target was removed from the pool.
      const client = new Client(front.url);
      const stuckOn = (await client.get()).body;
      const stale = client.cookie;
      const url = backends[names.indexOf(stuckOn)]!.url;
      assert.equal(lb.pool.remove(url), true);
      const moved = await client.get();
      assert.equal(moved.status, 200);
      assert.notEqual(moved.body, stuckOn, 'placed on a remaining target');
      assert.ok(client.cookie !== stale, 're-cookied');
      // Added back: the old cookie names it again (same key, same HMAC).
      lb.pool.add(url);
      const back = await request(`${front.url}/`, { headers: { cookie: `lb=${stale}` } });
      assert.equal(back.body, stuckOn);
      assert.deepEqual(lb.stats().affinity, { sticky: 1, placed: 1, replaced: 2 });
    } finally {
      await close();
    }
  });

  test('two balancer instances with the same secret and targets agree; another secret does not', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map(backend));
    const targets = backends.map((b) => b.url);
    const one = loadBalance({ targets, affinity: { cookie: 'lb', secret: SECRET } });
    // Another order and another strategy position: the cookie names a target, not a slot.
    const two = loadBalance({ targets: [...targets].reverse(), affinity: { cookie: 'lb', secret: Buffer.from(SECRET) } });
    const other = loadBalance({ targets, affinity: { cookie: 'lb', secret: `${SECRET}!` } });
    const fronts = await Promise.all([one, two, other].map((lb) => listen(lb)));
    try {
      for (let i = 0; i < 3; i++) {
        const first = await request(`${fronts[0]!.url}/`);
        const value = setCookie(first)!.value;
        for (let j = 0; j < 5; j++) {
          const reply = await request(`${fronts[1]!.url}/`, { headers: { cookie: `lb=${value}` } });
          assert.equal(reply.body, first.body, 'instance two honours instance one');
          assert.equal(setCookie(reply), undefined);
        }
        const foreign = await request(`${fronts[2]!.url}/`, { headers: { cookie: `lb=${value}` } });
        assert.notEqual(setCookie(foreign)?.value, undefined, 'another secret re-cookies');
      }
      assert.equal(two.stats().affinity!.sticky, 15);
      assert.equal(other.stats().affinity!.replaced, 3);
    } finally {
      await Promise.all([one, two, other].map((lb) => lb.close()));
      await closeAll(...fronts, ...backends);
    }
  });

  test('pool changes at run time: added targets get cookies, drained ones lose their clients', async () => {
    const { lb, front, close } = await withPool(['a']);
    const extra = await backend('d');
    try {
      lb.pool.add(extra.url);
      const clients = [new Client(front.url), new Client(front.url)];
      const placed = [await clients[0]!.get(), await clients[1]!.get()].map((r) => r.body).sort();
      assert.deepEqual(placed, ['a', 'd']);
      const bodies = await Promise.all(clients.map((c) => c.get()));
      const dClient = clients[bodies.findIndex((r) => r.body === 'd')]!;
      for (let i = 0; i < 5; i++) assert.equal((await dClient.get()).body, 'd');
      await lb.pool.drain(extra.url);
      const moved = await dClient.get();
      assert.equal(moved.body, 'a', 'a drained target no longer takes its clients');
      assert.ok(setCookie(moved), 're-cookied');
    } finally {
      await close();
      await extra.close();
    }
  });

  test('WebSocket handshakes are routed by their cookie', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map(wsBackend));
    const lb = loadBalance({ targets: backends.map((b) => b.url), affinity: { cookie: 'lb', secret: SECRET } });
    const front = await listen(lb);
    front.server.on('upgrade', lb.upgrade);
    const sockets: WebSocket[] = [];
    try {
      const first = await request(`${front.url}/`);
      const value = setCookie(first)!.value;
      for (let i = 0; i < 6; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${front.port}/`, { headers: { cookie: `lb=${value}` } });
        sockets.push(ws);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        const reply = await new Promise<string>((resolve) => {
          ws.once('message', (data) => resolve(String(data)));
          ws.send('hi');
        });
        assert.equal(reply, `${first.body}:hi`);
      }
      assert.equal(lb.stats().affinity!.sticky, 6);
    } finally {
      for (const ws of sockets) ws.terminate();
      await lb.close();
      await closeAll(front, ...backends);
    }
  });

  test('the response cache never stores the affinity cookie, and a HIT carries none', async () => {
    const origin = await listen((req, res) => {
      res.setHeader('cache-control', 'public, max-age=60');
      if (req.url === '/own-cookie') res.setHeader('set-cookie', 'app=1; Path=/');
      res.end(`body of ${req.url}`);
    });
    const lbs: LoadBalancer[] = [];
    const fronts: TestServer[] = [];
    try {
      for (const storeSetCookie of [false, true]) {
        const lb = loadBalance({ targets: [origin.url], affinity: { cookie: 'lb', secret: SECRET }, cache: responseCache({ storeSetCookie }) });
        const front = await listen(lb);
        lbs.push(lb);
        fronts.push(front);
        const miss = await request(`${front.url}/page`);
        assert.equal(cacheOutcome(miss.headers), 'MISS');
        assert.ok(setCookie(miss), 'the client that went upstream gets its cookie');
        const hit = await request(`${front.url}/page`);
        assert.equal(cacheOutcome(hit.headers), 'HIT', 'the affinity cookie does not make the response uncacheable');
        assert.equal(hit.headers['set-cookie'], undefined, "a HIT carries no one's affinity cookie");
        const ownMiss = await request(`${front.url}/own-cookie`);
        assert.deepEqual(
          ownMiss.headers['set-cookie']?.map((c) => c.split('=')[0]),
          ['app', 'lb'],
        );
        const ownAgain = await request(`${front.url}/own-cookie`);
        if (storeSetCookie) {
          assert.equal(cacheOutcome(ownAgain.headers), 'HIT');
          assert.deepEqual(ownAgain.headers['set-cookie'], ['app=1; Path=/'], 'the upstream cookie is stored, the affinity one is not');
        } else {
          assert.equal(cacheOutcome(ownAgain.headers), 'MISS', "the upstream's own cookie still keeps it out of the cache");
        }
      }
    } finally {
      await Promise.all(lbs.map((lb) => lb.close()));
      await closeAll(origin, ...fronts);
    }
  });

  test('invalid affinity options throw TypeErrors naming them', () => {
    const targets = ['http://127.0.0.1:1'];
    const cases: [unknown, RegExp][] = [
      [true, /options\.affinity must be an object/],
      [{ cookie: 'lb' }, /options\.affinity\.secret must be a string or Buffer of at least 16 bytes, got undefined/],
      [{ cookie: 'lb', secret: 'short' }, /options\.affinity\.secret must be .* got 5 bytes$/],
      [{ cookie: 'l b', secret: SECRET }, /options\.affinity\.cookie must be a cookie name/],
      [{ secret: SECRET, ttl: -1 }, /options\.affinity\.ttl must be a non-negative number of milliseconds, got -1/],
      [{ secret: SECRET, sameSite: 'Lax' }, /options\.affinity\.sameSite must be 'strict', 'lax', 'none' or false, got "Lax"/],
      [{ secret: SECRET, sameSite: 'none' }, /options\.affinity\.secure must be true with sameSite: 'none'/],
      [{ secret: SECRET, httpOnly: 'yes' }, /options\.affinity\.httpOnly must be a boolean/],
      [{ secret: SECRET, path: 'x;y' }, /options\.affinity\.path must be a cookie path/],
      [{ secret: SECRET, domain: 'x' }, /unknown option "affinity\.domain" \(expected one of cookie, secret, ttl, secure, sameSite, httpOnly, path\)/],
    ];
    for (const [affinity, message] of cases) {
      assert.throws(
        () => loadBalance({ targets, affinity: affinity as never }),
        (err: Error) => err instanceof TypeError && message.test(err.message),
      );
    }
  });

  test('cookie attributes follow the options', async () => {
    const b = await backend('a');
    const lb = loadBalance({
      targets: [b.url],
      affinity: { cookie: 'srv', secret: SECRET, ttl: 3_600_500, secure: true, sameSite: 'none', httpOnly: false, path: '/app' },
    });
    const front = await listen(lb);
    try {
      const reply = await request(`${front.url}/`);
      assert.equal(setCookie(reply, 'srv')?.attributes, '; Path=/app; Max-Age=3601; Secure; SameSite=None');
    } finally {
      await lb.close();
      await closeAll(front, b);
    }
  });
});
