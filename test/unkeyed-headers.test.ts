import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadBalance, responseCache, type LoadBalanceOptions, type LoadBalancer } from 'proxy-balancer';
import { countingBackend, type CountingBackend } from './abuse/harness.js';
import { closeAll, listen, request, type TestServer, cacheOutcome, handshakeHeadersSeen } from './helpers.js';

// Headers that backends (IIS, Symfony, Rack, method-override...) let reshape a response although
// the URL, and so the cache key, does not show them. The balancer's own list.
const UNKEYED: Record<string, string> = {
  'x-original-url': '/admin',
  'x-rewrite-url': '/admin',
  'x-http-method-override': 'DELETE',
  'x-http-method': 'DELETE',
  'x-method-override': 'DELETE',
  'x-forwarded-scheme': 'http',
  'x-forwarded-ssl': 'on',
  'front-end-https': 'on',
  'x-host': 'evil.example',
  'x-forwarded-server': 'evil.example',
};

/**
 * A backend that honours every header of the list, as the frameworks above do: its (cacheable)
 * answer names the first one present, else says `clean`.
 */
function honouringBackend(): Promise<CountingBackend> {
  return countingBackend((req, res) => {
    const shaping = Object.keys(UNKEYED).find((name) => req.headers[name] !== undefined);
    res.setHeader('cache-control', 'max-age=60');
    res.end(shaping === undefined ? 'clean' : `shaped by ${shaping}: ${req.headers[shaping]}`);
  });
}

async function balancer(backend: CountingBackend, options: Omit<LoadBalanceOptions, 'targets'> = {}): Promise<{ lb: LoadBalancer; front: TestServer }> {
  const lb = loadBalance({ targets: [backend.url], cache: responseCache(), ...options });
  return { lb, front: await listen(lb) };
}

describe('unkeyed headers that backends honour', () => {
  let backend: CountingBackend;
  before(async () => {
    backend = await honouringBackend();
  });
  after(() => closeAll(backend));

  const arrivalsOf = (path: string) => backend.arrivals.filter((a) => a.url === path);

  test('are removed before forwarding: an attacker request first never shapes what a clean client gets', async () => {
    const { lb, front } = await balancer(backend);
    try {
      for (const [name, value] of Object.entries(UNKEYED)) {
        const path = `/default/${name}`;
        const attacker = await request(`${front.url}${path}`, { headers: { [name]: value } });
        assert.equal(attacker.body, 'clean', `${name} did not reach the backend`);
        const clean = await request(`${front.url}${path}`);
        assert.equal(clean.body, 'clean', `${name}: the clean client gets the clean answer`);
        for (const arrival of arrivalsOf(path)) assert.equal(arrival.headers[name], undefined, `${name} was removed`);
      }
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('passHeaders forwards the chosen ones, which then key the cache: the clean client still gets the clean answer', async () => {
    const { lb, front } = await balancer(backend, { passHeaders: Object.keys(UNKEYED) });
    try {
      for (const [name, value] of Object.entries(UNKEYED)) {
        const path = `/passed/${name}`;
        const attacker = await request(`${front.url}${path}`, { headers: { [name]: value } });
        assert.equal(attacker.body, `shaped by ${name}: ${value}`, `${name} reached the backend`);
        const clean = await request(`${front.url}${path}`);
        assert.equal(clean.body, 'clean', `${name}: the shaped entry is not the clean client's`);
        assert.equal(cacheOutcome(clean.headers), 'MISS');
        const again = await request(`${front.url}${path}`, { headers: { [name]: value } });
        assert.equal(cacheOutcome(again.headers), 'HIT', `${name}: the sender's own entry is reused`);
        assert.equal(again.body, `shaped by ${name}: ${value}`);
        assert.equal((await request(`${front.url}${path}`)).body, 'clean');
        assert.deepEqual(
          arrivalsOf(path).map((a) => a.headers[name]),
          [value, undefined],
        );
      }
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('passHeaders lets through only the ones it names', async () => {
    const { lb, front } = await balancer(backend, { passHeaders: ['x-forwarded-ssl'] });
    try {
      const path = '/some-passed';
      const reply = await request(`${front.url}${path}`, { headers: { 'x-forwarded-ssl': 'on', 'x-original-url': '/admin' } });
      assert.equal(reply.body, 'shaped by x-forwarded-ssl: on');
      const seen = arrivalsOf(path)[0]!.headers;
      assert.equal(seen['x-original-url'], undefined);
      assert.equal(seen['x-forwarded-ssl'], 'on');
    } finally {
      await lb.close();
      await front.close();
    }
  });

  test('are removed from WebSocket handshakes too', async () => {
    const seen = await handshakeHeadersSeen(UNKEYED);
    for (const name of Object.keys(UNKEYED)) assert.equal(seen[name], undefined, `${name} was removed`);
  });

  test('passHeaders is validated', () => {
    const targets = [backend.url];
    const bad: unknown[] = ['x-original-url', {}, [1], ['x-forwarded-host'], ['X-Original-URL'], ['cookie']];
    for (const passHeaders of bad) {
      assert.throws(
        () => loadBalance({ targets, passHeaders: passHeaders as string[] }),
        (err: Error) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, /options\.passHeaders must be an array of names among x-original-url, /);
          return true;
        },
      );
    }
    assert.throws(() => loadBalance({ targets, passHeader: [] } as LoadBalanceOptions), /unknown option "passHeader"/);
    for (const passHeaders of [[], ['x-original-url', 'front-end-https']]) loadBalance({ targets, passHeaders }).close();
  });
});

describe('a GET with a body (fat GET)', () => {
  test('is neither stored nor answered from the cache: a backend that reads the body cannot shape a shared entry', async () => {
    // A backend (a search API, say) that answers a GET from its body when it has one. (Node's client
    // sends a GET body unframed unless told its length.)
    const backend = await countingBackend((req, res, arrival) => {
      req.on('end', () => {
        res.setHeader('cache-control', 'max-age=60');
        res.end(arrival.body === '' ? 'clean' : `shaped by body: ${arrival.body}`);
      });
    });
    const { lb, front } = await balancer(backend);
    try {
      const attacker = await request(`${front.url}/search`, { method: 'GET', headers: { 'content-length': '4' }, body: 'evil' });
      assert.equal(attacker.body, 'shaped by body: evil');
      assert.equal(cacheOutcome(attacker.headers), 'BYPASS');
      const clean = await request(`${front.url}/search`);
      assert.equal(clean.body, 'clean');
      assert.equal(cacheOutcome(clean.headers), 'MISS');
      const again = await request(`${front.url}/search`, { method: 'GET', headers: { 'content-length': '4' }, body: 'evil' });
      assert.equal(again.body, 'shaped by body: evil', 'the stored clean entry is not served for a request with a body either');
      assert.equal(cacheOutcome((await request(`${front.url}/search`)).headers), 'HIT');
    } finally {
      await lb.close();
      await closeAll(front, backend);
    }
  });
});
