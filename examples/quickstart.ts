/**
 * Quick start (`npm start`): three demo backends, an Express 5 front that load-balances `/api`
 * over them with health checks on, a burst of requests to show the spread, then it keeps serving
 * a light stream of demo traffic so the status page at `/_lb/` has something to show.
 *
 *   npx tsx examples/quickstart.ts          # front on 8080, backends on 3001-3003
 *   PORT=9000 BACKEND_PORT=0 npx tsx examples/quickstart.ts   # front on 9000, ephemeral backends
 *
 * Kill a backend and bring it back to watch the status page mark it down, then up:
 * type `k 2` / `r 2` at the prompt, or from another terminal
 * `curl -X POST http://localhost:8080/demo/backends/2/kill` (`/revive` to bring it back).
 * Busy ports fall back to ephemeral ones. Ctrl+C closes everything.
 */
import http from 'node:http';
import readline from 'node:readline';
import express from 'express';
import { httpHealthCheck, loadBalance } from 'proxy-balancer';
import { burst, closeServer, type DemoBackend, envPort, listen, onShutdown, printDistribution, printStats, startBackends } from './backends.js';

const demo = await startBackends(3);
for (const b of demo.backends) console.log(`backend ${b.name} on ${b.url}`);

// Round robin (the default) over the three backends, each probed every second: two failed
// probes take a backend out of rotation, two passing ones bring it back.
const lb = loadBalance({
  targets: demo.urls,
  healthCheck: httpHealthCheck({ interval: 1000, timeout: 500, unhealthyThreshold: 2, healthyThreshold: 2 }),
});

const app = express();
app.get('/', (_req, res) => {
  res.type('text/plain').send('Try /api/hello (proxied to one of the backends), /_lb/ (status page) and /metrics.\n');
});
// Everything under /api goes to a backend; the backend sees the path without /api.
app.use('/api', lb);
// Both name every backend: in production, mount them behind your own authentication.
app.get('/metrics', lb.metrics());
app.use('/_lb', lb.statusPage({ title: 'quickstart' }));
// Demo only: kill or revive a backend from another terminal.
app.post('/demo/backends/:n/:action', (req, res) => {
  const reply = control(req.params.action, req.params.n);
  res
    .status(reply.ok ? 200 : 404)
    .type('text/plain')
    .send(`${reply.message}\n`);
});

const server = http.createServer(app);
const port = await listen(server, envPort('PORT', 8080));
// Requests from here go to 127.0.0.1 (where it listens); URLs for people say localhost.
const base = `http://127.0.0.1:${port}`;
const front = `http://localhost:${port}`;
console.log(`front (Express 5) on ${front}\n`);

// A burst through the front itself, over real HTTP.
const requests = 30;
console.log(`Sending ${requests} requests to ${front}/api/hello (10 at a time)...`);
const counts = await burst(`${base}/api/hello`, requests, 10);
console.log('\nAnswers per backend:');
printDistribution(
  counts,
  demo.backends.map((b) => b.name),
);
console.log('\nlb.stats():');
printStats(lb.stats());

// A few requests a second from here on, so the status page shows requests moving between backends.
let running = true;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const traffic = (async () => {
  for (let n = 0; running; n++) {
    await new Promise<void>((resolve) => {
      http.get(`${base}/api/demo-${n}`, { agent }, (res) => res.resume().on('end', resolve).on('error', resolve)).on('error', () => resolve());
    });
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
})();

/** Kills or revives demo backend `n` (1-based); says what happened. */
function control(action: string, n: string): { ok: boolean; message: string } {
  const backend: DemoBackend | undefined = demo.backends[Number(n) - 1];
  if (backend === undefined || !/^\d+$/.test(n)) return { ok: false, message: `no backend ${n} (there are ${demo.backends.length})` };
  if (action === 'kill') {
    if (!backend.server.listening) return { ok: true, message: `${backend.name} is already down` };
    void backend.stop();
    return { ok: true, message: `${backend.name} killed: the status page shows it out of rotation (ejected, then down) within seconds` };
  }
  if (action === 'revive') {
    if (backend.server.listening) return { ok: true, message: `${backend.name} is already up` };
    backend.start().catch((err: unknown) => console.error(`could not restart ${backend.name}:`, err));
    return { ok: true, message: `${backend.name} revived: up again once its checks pass (a few seconds; up to 10 s after an ejection)` };
  }
  return { ok: false, message: `unknown action ${JSON.stringify(action)} (kill or revive)` };
}

console.log(`
Still serving. Open in a browser, or curl:
  status page  ${front}/_lb/
  metrics      ${front}/metrics
  a request    curl -i ${front}/api/hello

Kill a backend and bring it back (watch the status page):
  here:               k 2   then   r 2      (s: stats, q: quit)
  another terminal:   curl -X POST ${front}/demo/backends/2/kill
                      curl -X POST ${front}/demo/backends/2/revive
Ctrl+C to stop.`);

const prompt = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
prompt.on('line', (line) => {
  const [command = '', n = ''] = line.trim().split(/\s+/);
  if (command === 'k' || command === 'r') console.log(control(command === 'k' ? 'kill' : 'revive', n).message);
  else if (command === 's') printStats(lb.stats());
  else if (command === 'q') process.kill(process.pid, 'SIGINT');
  else if (command !== '') console.log('k <n>: kill backend n, r <n>: revive it, s: stats, q: quit');
});

onShutdown(async () => {
  prompt.close();
  running = false;
  await traffic;
  agent.destroy();
  await lb.close(); // waits for in-flight requests, then closes upstream connections
  await closeServer(server);
  await demo.close();
});
