/**
 * Seeing the balancer: Prometheus metrics and the status page, under steady traffic, while one
 * backend crashes and comes back.
 *
 *   npx tsx examples/observability.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 *
 * then open http://localhost:8080/_lb/ (the status page; `?format=json` for its figures) and
 * `curl http://localhost:8080/metrics`. After 20 s backend-3 stops listening: the health check
 * marks it down within ~2 s, and the page shows it; 20 s later it is back. Ctrl+C stops.
 */
import http from 'node:http';
import express from 'express';
import { httpHealthCheck, loadBalance, responseCache } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown } from './backends.js';

/** A backend whose latency wanders around `baseMs`; `/static/*` answers are cacheable for 5 s. */
async function backend(name: string, port: number, baseMs: number) {
  const server = http.createServer((req, res) => {
    req.resume();
    const wave = 1 + 0.5 * Math.sin(Date.now() / 4000 + baseMs);
    const ms = req.url === '/health' ? 0 : baseMs * wave * (0.7 + Math.random() * 0.6);
    setTimeout(() => {
      if (req.url?.startsWith('/static/')) res.setHeader('cache-control', 'public, max-age=5');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ backend: name, path: req.url }));
    }, ms);
  });
  const actual = await listen(server, port);
  return { name, server, port: actual, url: `http://127.0.0.1:${actual}` };
}

const firstPort = envPort('BACKEND_PORT', 3001);
const backends = await Promise.all([backend('backend-1', firstPort, 12), backend('backend-2', firstPort + 1, 35), backend('backend-3', firstPort + 2, 22)]);

const lb = loadBalance({
  targets: backends.map((b) => b.url),
  healthCheck: httpHealthCheck({ path: '/health', interval: 1000, timeout: 500, healthyThreshold: 2, unhealthyThreshold: 2 }),
  cache: responseCache(),
});

const app = express();
// Mount both behind your own auth in production: they name every backend.
app.get('/metrics', lb.metrics());
app.use('/_lb', lb.statusPage({ title: 'example pool' }));
app.use(lb);
const front = http.createServer(app);
const port = await listen(front, envPort('PORT', 8080));
const base = `http://127.0.0.1:${port}`;
console.log(`status page: http://localhost:${port}/_lb/`);
console.log(`metrics:     curl http://localhost:${port}/metrics`);

// Steady traffic: four clients, a request every 40 ms each, one in five to a cacheable path.
let running = true;
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const client = async (id: number): Promise<void> => {
  for (let n = 0; running; n++) {
    const path = n % 5 === 0 ? `/static/logo-${n % 3}.png` : `/api/items/${id}-${n}`;
    await new Promise<void>((resolve) => {
      http.get(`${base}${path}`, { agent }, (res) => res.resume().on('end', resolve).on('error', resolve)).on('error', () => resolve());
    });
    await new Promise((resolve) => setTimeout(resolve, 40));
  }
};
const clients = [0, 1, 2, 3].map(client);

// backend-3 crashes after 20 s and restarts 20 s later.
const victim = backends[2]!;
const crash = setTimeout(async () => {
  console.log(`${victim.name} stops listening`);
  await closeServer(victim.server);
  restart = setTimeout(() => {
    console.log(`${victim.name} listens again`);
    victim.server.listen(victim.port, '127.0.0.1');
  }, 20_000);
}, 20_000);
let restart: NodeJS.Timeout | undefined;
lb.on('targetDown', (target, info) => console.log(`targetDown ${target.key} (${info.state})`));
lb.on('targetUp', (target) => console.log(`targetUp ${target.key}`));

onShutdown(async () => {
  running = false;
  clearTimeout(crash);
  clearTimeout(restart);
  await Promise.all(clients);
  agent.destroy();
  await lb.close(); // also stops the status page's sampler
  await closeServer(front);
  await Promise.all(backends.map((b) => closeServer(b.server)));
});
