/**
 * Bare node:http: the balancer is the whole request handler, `http.createServer(lb)`. This example
 * also changes membership at run time through `lb.pool`: it starts empty (`dynamic: true`, every
 * request gets 503), adds targets, changes a weight, then drains one.
 *
 *   npx tsx examples/node-http.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import { loadBalance, weightedRoundRobin } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, request, startBackends } from './backends.js';

const demo = await startBackends(3);
const names = demo.backends.map((b) => b.name);
const [a, b, c] = demo.urls;

const lb = loadBalance({ targets: [], dynamic: true, strategy: weightedRoundRobin() });
const server = http.createServer(lb);
const port = await listen(server, envPort('PORT', 8080));
const front = `http://127.0.0.1:${port}`;
console.log(`node:http front on ${front}\n`);

const empty = await request(`${front}/status`);
console.log(`1. Empty pool: GET /status -> ${empty.status}, Retry-After: ${empty.headers['retry-after']}`);

lb.pool.add(a);
lb.pool.add({ url: b, weight: 2 });
console.log(`\n2. Added ${a} (weight 1) and ${b} (weight 2); 30 requests:`);
printDistribution(await burst(`${front}/status`, 30, 5), names);

lb.pool.add({ url: c, weight: 3 }); // adding a URL again would only update its weight
console.log(`\n3. Added ${c} (weight 3); 30 requests:`);
printDistribution(await burst(`${front}/status`, 30, 5), names);

const drained = await lb.pool.drain(a); // out of rotation now, removed once its requests finish
console.log(`\n4. Drained ${a} (resolved ${drained}); 30 requests:`);
printDistribution(await burst(`${front}/status`, 30, 5), names);

console.log(`\nMembers now: ${lb.pool.targets.map((t) => `${t.key} (weight ${t.weight}, ${t.state})`).join(', ')}`);
console.log(`\nTry:\n  curl -i http://localhost:${port}/anything\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
