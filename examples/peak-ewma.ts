/**
 * Latency-aware balancing with `peakEwma()` (Finagle/Linkerd's peak-EWMA) and `leastRequest()`
 * (Envoy's LEAST_REQUEST) next to `roundRobin()`, over three backends of which one answers 50 ms
 * late. Round robin gives the slow one its third of the requests; the other two notice it and send
 * it only a few, peakEwma from its latency, leastRequest from its requests piling up.
 *
 * `lb.stats()` shows what peakEwma balances by: per target `balancing.latency` (its peak-EWMA
 * estimate, ms) and `balancing.score` (estimate × (in flight + 1) / weight; the lower of two sampled
 * targets wins).
 *
 *   npx tsx examples/peak-ewma.ts    # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import { leastRequest, loadBalance, peakEwma, roundRobin, type Strategy } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, startBackends } from './backends.js';

const NAMES = ['fast-1', 'fast-2', 'slow'];
const demo = await startBackends(3, { names: NAMES, delayMs: [0, 0, 50] });

async function compare(strategy: Strategy): Promise<void> {
  const lb = loadBalance({ targets: demo.urls, strategy });
  const server = http.createServer(lb);
  const port = await listen(server, 0);
  console.log(`\n${strategy.name}: 300 requests, 10 concurrent`);
  printDistribution(await burst(`http://127.0.0.1:${port}/`, 300, 10), NAMES);
  for (const t of lb.stats().targets) if (t.balancing !== undefined) console.log(`  ${t.url}  ${JSON.stringify(t.balancing)}`);
  await lb.close();
  await closeServer(server);
}

await compare(roundRobin());
await compare(leastRequest());
await compare(peakEwma());

// Keep a peakEwma front running to try by hand.
const lb = loadBalance({ targets: demo.urls, strategy: peakEwma({ decay: 10_000 }) });
const server = http.createServer(lb);
const port = await listen(server, envPort('PORT', 8080));
console.log(`\nfront on http://127.0.0.1:${port} (peakEwma). Try:\n  curl -i http://localhost:${port}/anything\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
