/**
 * Express 4: identical to Express 5 as far as the balancer is concerned.
 *
 *   npx tsx examples/express4.ts      # PORT (default 8080), BACKEND_PORT (default 3001)
 *
 * In your project this is simply `import express from 'express'` with express@4 installed. This
 * repository installs Express 4 under the npm alias `express4` (and only Express 5's types), so
 * it is loaded through require() and typed as an Express app here.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type expressTypes from 'express';
import { loadBalance, roundRobin } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, startBackends } from './backends.js';

const express = createRequire(import.meta.url)('express4') as typeof expressTypes;
const version = (createRequire(import.meta.url)('express4/package.json') as { version: string }).version;

const demo = await startBackends(2);
const lb = loadBalance({ targets: demo.urls, strategy: roundRobin() });

const app = express();
app.get('/', (_req, res) => {
  res.type('text/plain').send(`Express ${version}. Proxied: /api/*\n`);
});
app.use('/api', lb);

const server = http.createServer(app);
const port = await listen(server, envPort('PORT', 8080));
console.log(`Express ${version} front on http://127.0.0.1:${port}`);

console.log('\n10 requests to /api/items:');
printDistribution(
  await burst(`http://127.0.0.1:${port}/api/items`, 10, 2),
  demo.backends.map((b) => b.name),
);

console.log(`\nTry:\n  curl -i http://localhost:${port}/api/items\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
