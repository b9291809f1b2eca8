/**
 * Express 5: the app keeps its own routes and mounts the balancer under /api, using least
 * connections with weights (a target with weight 3 is allowed three times the in-flight requests
 * of a weight-1 target before it counts as equally loaded).
 *
 *   npx tsx examples/express.ts       # PORT (default 8080), BACKEND_PORT (default 3001)
 *
 * Express 4 works the same way (`app.use('/api', lb)`); see examples/express4.ts.
 */
import http from 'node:http';
import express from 'express';
import { leastConnections, loadBalance } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, printStats, startBackends } from './backends.js';

// Slow-ish backends (100 ms) so that requests overlap and in-flight counts matter.
const demo = await startBackends(3, { names: ['big', 'small-1', 'small-2'], delayMs: 100 });
const [big, small1, small2] = demo.urls;

const lb = loadBalance({
  targets: [{ url: big, weight: 3 }, small1, small2],
  strategy: leastConnections(),
  proxyTimeout: 10_000, // give up on a backend that stays silent for 10 s (504)
});

const app = express();

// The app's own routes are served locally...
app.get('/', (_req, res) => {
  res.type('text/plain').send('Local route. Proxied: /api/*. Balancer figures: /stats\n');
});
app.get('/stats', (_req, res) => {
  res.json(lb.stats());
});

// ...and everything under /api is proxied. The backend sees /users for /api/users.
app.use('/api', lb);

const server = http.createServer(app);
const port = await listen(server, envPort('PORT', 8080));
console.log(`Express 5 front on http://127.0.0.1:${port}; backends: ${demo.backends.map((b) => `${b.name}=${b.url}`).join(', ')}`);

// 50 requests, 10 at a time: least connections with weights 3:1:1 sends about 3/5 to "big".
console.log('\n50 requests to /api/users, 10 concurrent:');
printDistribution(await burst(`http://127.0.0.1:${port}/api/users`, 50, 10), ['big', 'small-1', 'small-2']);
printStats(lb.stats());

console.log(`\nTry:
  curl -i http://localhost:${port}/api/users/42
  curl http://localhost:${port}/stats
Ctrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
