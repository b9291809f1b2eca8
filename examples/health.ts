/**
 * Failure handling: active health checks, passive outlier detection, retries and slow start.
 * One of three backends "crashes" (stops listening), then comes back:
 *
 *   1. while it is dead, requests that land on it fail to connect and are retried on another
 *      backend, so clients still get 200; after 2 such failures it is ejected (passive);
 *   2. the health check (GET /health every second) also marks it down (active);
 *   3. once it listens again and passes 2 checks, it returns, and slow start ramps its weight
 *      from 10% to 100% over 3 seconds.
 *
 *   npx tsx examples/health.ts        # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import { httpHealthCheck, loadBalance, weightedRoundRobin } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, printStats, startBackends } from './backends.js';

const demo = await startBackends(3);
const names = demo.backends.map((b) => b.name);
const victim = demo.backends[1]!;

const lb = loadBalance({
  targets: demo.urls,
  strategy: weightedRoundRobin(), // weight-aware, so the slow-start ramp shows
  healthCheck: httpHealthCheck({ path: '/health', interval: 1000, timeout: 500, healthyThreshold: 2, unhealthyThreshold: 2 }),
  outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 4000 },
  retry: { retries: 2 }, // the default count; GET is retried by default
  slowStart: 3000,
});

const started = Date.now();
const log = (message: string): void => console.log(`  [${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}`);
lb.on('targetDown', (target, info) => log(`event targetDown: ${target.key} is ${info.state}${info.check ? ` (last check: ${info.check.detail})` : ''}`));
lb.on('targetUp', (target, from) => log(`event targetUp: ${target.key} is back (was ${from})`));
lb.on('ejected', (target, info) => log(`event ejected: ${target.key} for ${info.durationMs} ms (ejection #${info.ejections})`));
lb.on('retry', (info) => log(`event retry: ${info.method} ${info.url} from ${info.from.key} to ${info.to.key} (${info.error.message})`));
lb.on('panic', (info) => log(`event panic: ${info.active ? 'on' : 'off'} (${info.up} of ${info.eligible} up)`));

const server = http.createServer(lb);
const port = await listen(server, envPort('PORT', 8080));
const front = `http://127.0.0.1:${port}`;
console.log(`front on ${front}; waiting for the first health check of every backend...`);
await lb.firstHealthCheck();

console.log('\n1. All healthy, 30 requests:');
printDistribution(await burst(`${front}/work`, 30, 3), names);

console.log(`\n2. ${victim.name} (${victim.url}) crashes; 30 requests right away:`);
await victim.stop();
printDistribution(await burst(`${front}/work`, 30, 3), names);
printStats(lb.stats());

console.log(`\n3. Waiting for the health check to see it...`);
await new Promise((resolve) => setTimeout(resolve, 2500));
printStats(lb.stats());

console.log(`\n4. ${victim.name} is restarted; waiting until it is back in rotation...`);
const back = new Promise<void>((resolve) => lb.once('targetUp', () => resolve()));
await victim.start();
await back;

console.log('\n5. Slow start: its share of each round of 20 requests grows with its weight:');
for (let round = 0; round < 6; round++) {
  const counts = await burst(`${front}/work`, 20, 2);
  const target = lb.stats().targets.find((t) => t.url === victim.url)!;
  log(`${victim.name}: ${String(counts.get(victim.name) ?? 0).padStart(2)}/20 requests, effective weight ${target.effectiveWeight.toFixed(2)}`);
  await new Promise((resolve) => setTimeout(resolve, 600));
}
printStats(lb.stats());

console.log(`\nTry:\n  curl -i http://localhost:${port}/work\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close(); // also stops the health checks
  await closeServer(server);
  await demo.close();
});
