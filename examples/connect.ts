/**
 * Connect: the balancer is a Connect middleware. Mounted with `app.use('/api', lb)`, the backend
 * sees the path without the mount prefix (Connect strips it from req.url).
 *
 *   npx tsx examples/connect.ts       # PORT (default 8080), BACKEND_PORT (default 3001)
 */
import http from 'node:http';
import connect from 'connect';
import { loadBalance, powerOfTwoChoices } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown, request, startBackends } from './backends.js';

const demo = await startBackends(3);
const lb = loadBalance({ targets: demo.urls, strategy: powerOfTwoChoices() });

const app = connect()
  // An ordinary middleware before the balancer: a one-line access log.
  .use((req, res, next) => {
    const started = Date.now();
    res.on('finish', () => console.log(`  ${req.method} ${req.originalUrl} -> ${res.statusCode} (${Date.now() - started} ms)`));
    next();
  })
  .use('/api', lb)
  .use((_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.setHeader('content-type', 'text/plain');
    res.end('Local answer from Connect. Proxied: /api/*\n');
  });

const server = http.createServer(app);
const port = await listen(server, envPort('PORT', 8080));
console.log(`Connect front on http://127.0.0.1:${port}\n`);

for (const path of ['/api/orders/1', '/api/orders/2?expand=items', '/', '/api']) {
  const reply = await request(`http://127.0.0.1:${port}${path}`);
  console.log(`GET ${path} -> ${reply.status} ${reply.body.trim()}`);
}

console.log(`\nTry:\n  curl -i http://localhost:${port}/api/orders/7\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
