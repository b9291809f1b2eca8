/**
 * Quick start (`npm start`): three demo backends, an Express 5 front that load-balances `/api`
 * over them, a burst of requests through the front to show the spread, then it keeps serving.
 *
 *   npx tsx examples/quickstart.ts          # front on 8080, backends on 3001-3003
 *   PORT=9000 BACKEND_PORT=0 npx tsx examples/quickstart.ts   # front on 9000, ephemeral backends
 *
 * Busy ports fall back to ephemeral ones. Ctrl+C closes everything.
 */
import http from 'node:http';
import express from 'express';
import { loadBalance } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, printStats, startBackends } from './backends.js';

const demo = await startBackends(3);
for (const b of demo.backends) console.log(`backend ${b.name} on ${b.url}`);

// The balancer: round robin (the default) over the three backends.
const lb = loadBalance({ targets: demo.urls });

const app = express();
app.get('/', (_req, res) => {
  res.type('text/plain').send('Try /api/hello: it is proxied to one of the backends.\n');
});
// Everything under /api goes to a backend; the backend sees the path without /api.
app.use('/api', lb);

const server = http.createServer(app);
const port = await listen(server, envPort('PORT', 8080));
const front = `http://127.0.0.1:${port}`;
console.log(`front (Express 5) on ${front}\n`);

// A burst through the front itself, over real HTTP.
const requests = 30;
console.log(`Sending ${requests} requests to ${front}/api/hello (10 at a time)...`);
const counts = await burst(`${front}/api/hello`, requests, 10);
console.log('\nAnswers per backend:');
printDistribution(
  counts,
  demo.backends.map((b) => b.name),
);
console.log('\nlb.stats():');
printStats(lb.stats());

console.log(`\nStill serving. Try:\n  curl -i http://localhost:${port}/api/hello\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close(); // waits for in-flight requests, then closes upstream connections
  await closeServer(server);
  await demo.close();
});
