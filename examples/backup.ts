/**
 * Backup targets (NGINX/HAProxy `backup`): two primaries and one backup. The backup takes no
 * traffic while a primary is up. When both primaries crash, a request that failed on every primary
 * is retried on the backup (as NGINX does) while the retry budget lasts, and once the health checks
 * have taken the primaries out every request goes there; once a primary passes its checks again,
 * new requests go back to the primaries.
 *
 *   npx tsx examples/backup.ts        # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import { httpHealthCheck, loadBalance } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, startBackends } from './backends.js';

const demo = await startBackends(3);
const names = demo.backends.map((b) => b.name);
const [first, second, spare] = demo.backends as [(typeof demo.backends)[0], (typeof demo.backends)[0], (typeof demo.backends)[0]];

const lb = loadBalance({
  targets: [first.url, second.url, { url: spare.url, backup: true }],
  healthCheck: httpHealthCheck({ path: '/health', interval: 500, timeout: 300, healthyThreshold: 2, unhealthyThreshold: 2 }),
});
lb.on('targetDown', (target, info) => console.log(`  event targetDown: ${target.key} is ${info.state}`));
lb.on('targetUp', (target) => console.log(`  event targetUp: ${target.key}`));

const server = http.createServer(lb);
const port = await listen(server, envPort('PORT', 8080));
const front = `http://127.0.0.1:${port}`;
await lb.firstHealthCheck();

console.log(`front on ${front}; ${spare.name} (${spare.url}) is the backup.\n\n1. Primaries up, 30 requests:`);
printDistribution(await burst(`${front}/work`, 30, 3), names);

console.log(`\n2. ${first.name} and ${second.name} crash; 30 requests right away, then 30 more once the checks have seen it:`);
await Promise.all([first.stop(), second.stop()]);
printDistribution(await burst(`${front}/work`, 30, 3), names);
await new Promise((resolve) => setTimeout(resolve, 1500));
printDistribution(await burst(`${front}/work`, 30, 3), names);
console.log(`  serving from backups: ${lb.stats().onBackups}`);

console.log(`\n3. ${first.name} comes back; once it passes two checks, new requests leave the backup:`);
const back = new Promise<void>((resolve) => lb.once('targetUp', () => resolve()));
await first.start();
await back;
printDistribution(await burst(`${front}/work`, 30, 3), names);
console.log(`  serving from backups: ${lb.stats().onBackups}`);

console.log(`\nTry:\n  curl -i http://localhost:${port}/work\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
