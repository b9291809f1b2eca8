/**
 * Retries that ride through trouble:
 *
 *   1. a single backend restarts (down for 200 ms) while clients keep sending GETs: with the
 *      jittered back-off the balancer tries it again once it is back, so no GET fails; with
 *      `backoff: false` the same restart fails the GETs that land in it;
 *   2. one of two backends answers 503 with `Retry-After: 2` (an overloaded instance shedding
 *      load): with `retry.onStatus` its 503s are never relayed, the request goes to the other
 *      backend, and the busy one gets no request for 2 seconds.
 *
 *   npx tsx examples/retry.ts        # BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadBalance, type LoadBalanceOptions } from 'proxy-balancer';
import { closeServer, listen, request, startBackends } from './backends.js';

/** GETs from `clients` loops for `ms`, running `during` half-way. Returns counts by outcome. */
async function load(front: string, clients: number, ms: number, during: () => Promise<void>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  let stop = false;
  const loop = async (): Promise<void> => {
    while (!stop) {
      const reply = await request(`${front}/`, { agent }).catch(() => ({ status: 0 }));
      const key = reply.status === 200 ? '200' : `failed (${reply.status || 'connection error'})`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  const loops = Array.from({ length: clients }, loop);
  await new Promise((resolve) => setTimeout(resolve, ms / 2));
  await during();
  await new Promise((resolve) => setTimeout(resolve, ms / 2));
  stop = true;
  await Promise.all(loops);
  agent.destroy();
  return counts;
}

async function withBalancer<T>(options: LoadBalanceOptions, run: (front: string) => Promise<T>): Promise<T> {
  const lb = loadBalance(options);
  const server = http.createServer(lb);
  await listen(server, 0);
  try {
    return await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await lb.close();
    await closeServer(server);
  }
}

console.log('1. A single backend restarts (200 ms down) under 4 loops of GETs:');
const single = await startBackends(1);
const backend = single.backends[0]!;
const restart = async (): Promise<void> => {
  await backend.stop();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await backend.start();
};
for (const [label, retry] of [
  // minRetries: the budget's 10-second window starts empty in a demo; steady traffic fills it.
  ['retry: { retries: 10, minRetries: 200 }', { retries: 10, minRetries: 200 }],
  ['retry: { retries: 10, backoff: false }', { retries: 10, backoff: false as const }],
] as const) {
  const counts = await withBalancer({ targets: single.urls, retry }, (front) => load(front, 4, 1000, restart));
  console.log(`  ${label.padEnd(40)} ${[...counts].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
}
await single.close();

console.log('\n2. One of two backends sheds load with 503 + Retry-After: 2; retry.onStatus: [502, 503, 504]:');
let busyHits = 0;
const busy = http.createServer((req, res) => {
  busyHits++;
  req.resume();
  res.writeHead(503, { 'retry-after': '2', 'content-type': 'text/plain' });
  res.end('overloaded, come back in 2 s\n');
});
await listen(busy, 0);
const calm = await startBackends(1, { firstPort: 0, names: ['calm'] });
const busyUrl = `http://127.0.0.1:${(busy.address() as AddressInfo).port}`;
await withBalancer({ targets: [busyUrl, ...calm.urls], retry: { onStatus: [502, 503, 504] } }, async (front) => {
  const statuses = new Map<number, number>();
  const started = Date.now();
  for (let i = 0; i < 40; i++) {
    const reply = await request(`${front}/`);
    statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
    if (i === 19) {
      console.log(`  after 20 requests: busy backend hit ${busyHits} time(s); clients got ${[...statuses].map(([s, n]) => `${n}× ${s}`).join(', ')}`);
      console.log('  waiting out the 2 s hold-off...');
      await new Promise((resolve) => setTimeout(resolve, 2100));
    }
  }
  console.log(
    `  after 40 requests (${((Date.now() - started) / 1000).toFixed(1)} s): busy backend hit ${busyHits} times; clients got ${[...statuses].map(([s, n]) => `${n}× ${s}`).join(', ')}`,
  );
});
await closeServer(busy);
await calm.close();
