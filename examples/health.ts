/**
 * Health and failover while traffic flows: three backends behind an active HTTP health check and
 * passive ejection. Backend 2 is killed two seconds in and revived three seconds later; the
 * balancer's events and a per-second tally of answers show what it does.
 *
 *   npx tsx examples/health.ts            # DEBUG=proxy-balancer:health for the checker's own log
 */
import http from 'node:http';
import { httpHealthCheck, loadBalance, weightedRoundRobin } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown, startBackends } from './backends.js';

const demo = await startBackends(3, { firstPort: 0 });
const names = new Map(demo.backends.map((b) => [b.url, b.name]));
const nameOf = (key: string): string => names.get(key) ?? key;

const lb = loadBalance({
  targets: demo.urls,
  strategy: weightedRoundRobin(), // weight-aware, so slow start's ramp shows
  healthCheck: httpHealthCheck({ path: '/', interval: 250, timeout: 200, unhealthyThreshold: 2, healthyThreshold: 2 }),
  outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 1000 },
  slowStart: 1000,
});
const started = Date.now();
const at = (): string => `${((Date.now() - started) / 1000).toFixed(2).padStart(5)} s`;
lb.on('targetDown', (t, info) => console.log(`${at()}  targetDown ${nameOf(t.key)} (${info.state}${info.check ? `, last check: ${info.check.detail}` : ''})`));
lb.on('ejected', (t, info) => console.log(`${at()}  ejected    ${nameOf(t.key)} for ${info.durationMs} ms (ejection #${info.ejections})`));
lb.on('targetUp', (t, from) => console.log(`${at()}  targetUp   ${nameOf(t.key)} (was ${from}; its weight ramps up over 1 s)`));
lb.on('retry', (info) => console.log(`${at()}  retry      ${info.method} ${info.url}: ${nameOf(info.from.key)} failed (${info.error.message}), sent to ${nameOf(info.to.key)}`));

const front = http.createServer(lb);
const port = await listen(front, envPort('PORT', 8080));
console.log(`front on http://127.0.0.1:${port}; traffic: 4 clients in a loop\n`);

const agent = new http.Agent({ keepAlive: true });
let tally = new Map<string, number>();
let running = true;
async function client(): Promise<void> {
  while (running) {
    const answer = await new Promise<string>((resolve) => {
      http
        .get(`http://127.0.0.1:${port}/`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200 ? String(res.headers['x-backend']) : `HTTP ${res.statusCode}`));
        })
        .on('error', (err) => resolve(`error ${err.message}`));
    });
    tally.set(answer, (tally.get(answer) ?? 0) + 1);
  }
}
const clients = Array.from({ length: 4 }, client);
const ticker = setInterval(() => {
  const line = [...tally].sort().map(([k, v]) => `${k}: ${v}`).join(', ');
  console.log(`${at()}  answers in the last second: ${line}`);
  tally = new Map();
}, 1000);

const victim = demo.backends[1]!;
setTimeout(async () => {
  console.log(`${at()}  --- killing ${victim.name} (server closed, connections destroyed) ---`);
  await closeServer(victim.server);
}, 2000);
setTimeout(async () => {
  await listen(victim.server, victim.port);
  console.log(`${at()}  --- ${victim.name} is back on port ${victim.port} ---`);
}, 5000);
setTimeout(() => {
  running = false;
  clearInterval(ticker);
  const stats = lb.stats();
  console.log(`\nAfter 9 s: retries ${stats.retries}, 503s ${stats.unavailable}`);
  for (const t of stats.targets) {
    console.log(`  ${nameOf(t.url)}: ${t.state}, ${t.total} requests, ${t.errors} errors, ${t.ejections ?? 0} ejections, last check ${t.lastCheck?.detail ?? '-'}`);
  }
  console.log(`\nStill serving on http://localhost:${port}/ — Ctrl+C to stop.`);
}, 9000);

onShutdown(async () => {
  running = false;
  clearInterval(ticker);
  await Promise.all(clients);
  agent.destroy();
  await lb.close();
  await closeServer(front);
  await demo.close();
});
