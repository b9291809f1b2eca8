import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { loadBalance, responseCache } from 'proxy-balancer';
import cases from './conformance/cases.js';
import { Origin, runCases, tally } from './conformance/harness.js';

/**
 * Every case of our conformance set (test/conformance, written from the HTTP cache-tests suite's
 * definitions) through the balancer with a response cache. Interim responses depend on the proxy
 * relaying 1xx, which the cache does not do itself.
 */
const DEPENDS_ON_THE_PROXY = new Set(['interim-102', 'interim-103']);

test('the conformance set: every required, optimal and check case passes', async () => {
  const origin = new Origin();
  await origin.start();
  const lb = loadBalance({ targets: [origin.url], cache: responseCache({ storePost: true }) });
  const server = http.createServer(lb);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const outcomes = await runCases(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, origin, cases);
    const failures = outcomes.filter((o) => !o.pass && !DEPENDS_ON_THE_PROXY.has(o.id)).map((o) => `${o.kind} ${o.spec} ${o.id}: ${o.reason}`);
    const t = tally(outcomes);
    assert.deepEqual(failures, [], `required ${t.required.join('/')}, optimal ${t.optimal.join('/')}, check ${t.check.join('/')}`);
    assert.equal(t.required[0], t.required[1], 'every required case');
  } finally {
    await lb.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await origin.close();
  }
});
