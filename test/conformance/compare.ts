/**
 * The measurement behind the policy-core decision: every conformance case through proxy-balancer's
 * cache and through a cache whose policy is http-cache-semantics, side by side.
 *
 *   npx tsx test/conformance/compare.ts          # tallies and the cases where they differ
 *   npx tsx test/conformance/compare.ts --all    # every failure of each
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadBalance, responseCache } from '../../lib/index.js';
import cases from './cases.js';
import { Origin, runCases, tally, type Outcome } from './harness.js';
import { hcsCache } from './hcs-cache.js';

async function serve(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function ours(): Promise<Outcome[]> {
  const origin = new Origin();
  await origin.start();
  const lb = loadBalance({ targets: [origin.url], cache: responseCache() });
  const server = http.createServer(lb);
  const outcomes = await runCases(await serve(server), origin, cases);
  await lb.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await origin.close();
  return outcomes;
}

async function library(): Promise<Outcome[]> {
  const origin = new Origin();
  await origin.start();
  const server = hcsCache(origin.url);
  const outcomes = await runCases(await serve(server), origin, cases);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await origin.close();
  return outcomes;
}

const [a, b] = await Promise.all([ours(), library()]);
const show = (name: string, o: Outcome[]) => {
  const t = tally(o);
  const all = o.filter((x) => x.pass).length;
  console.log(`${name.padEnd(22)} ${all}/${o.length} pass · required ${t.required.join('/')} · optimal ${t.optimal.join('/')} · check ${t.check.join('/')}`);
};
show('proxy-balancer', a);
show('http-cache-semantics', b);
const byId = new Map(b.map((o) => [o.id, o]));
console.log('\ncases where they differ (ours | library):');
for (const o of a) {
  const other = byId.get(o.id)!;
  if (o.pass !== other.pass)
    console.log(`  ${o.kind.padEnd(8)} ${o.id.padEnd(44)} ${o.pass ? 'pass' : 'FAIL'} | ${other.pass ? 'pass' : 'FAIL'}   ${o.reason ?? other.reason ?? ''}`);
}
if (process.argv.includes('--all')) {
  for (const [name, list] of [
    ['proxy-balancer', a],
    ['http-cache-semantics', b],
  ] as const) {
    console.log(`\n${name} failures:`);
    for (const o of list) if (!o.pass) console.log(`  ${o.kind.padEnd(8)} ${o.spec.padEnd(10)} ${o.id.padEnd(44)} ${o.reason}`);
  }
}
