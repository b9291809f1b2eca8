/**
 * Protection in front of two slow backends: a rate limit, a connection cap with its queue, a
 * request filter, request limits, pathRewrite and slow-client timeouts, each shown refusing
 * something before it reaches a backend.
 *
 *   npx tsx examples/protect.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 *   DEBUG=proxy-balancer:protect npx tsx examples/protect.ts    # why each refusal happened
 */
import http from 'node:http';
import { loadBalance, serverTimeouts } from 'proxy-balancer';
import { burst, closeServer, envPort, listen, onShutdown, printDistribution, request, startBackends } from './backends.js';

const demo = await startBackends(2, { delayMs: 200 });

const lb = loadBalance({
  targets: demo.urls,
  // 10 requests at once per client, then 2 per second.
  rateLimit: { limit: 20, windowMs: 10_000, burst: 10 },
  // At most 2 requests at a time per backend; 2 more may wait up to 1 s, the rest get 503.
  maxConnections: 2,
  maxQueue: 2,
  queueTimeout: 1000,
  maxBodySize: 1024,
  allowedMethods: ['GET', 'HEAD', 'POST'],
  // Only /api/... is reachable, and it cannot climb out of it.
  pathRewrite: { '/api': '/' },
  filter: (req) => (req.url?.startsWith('/admin') && req.headers.authorization !== 'Bearer demo' ? { status: 401, message: 'token required' } : true),
});
// Slowloris clients get 408 after 10 s for their headers, 30 s for the whole request.
const front = serverTimeouts(http.createServer(lb));
const port = await listen(front, envPort('PORT', 8080));
const base = `http://127.0.0.1:${port}`;

console.log(`protected balancer on ${base}, two backends answering in 200 ms\n`);
console.log('12 requests at once from one client (burst 10; 4 slots and 4 queue places over the two backends):');
printDistribution(await burst(`${base}/api/items`, 12, 12), ['backend-1', 'backend-2']);

const show = async (label: string, path: string, options: http.RequestOptions & { body?: string } = {}): Promise<void> => {
  await new Promise((resolve) => setTimeout(resolve, 600));
  const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    // host/port/path rather than a URL string, which would normalize '%2e%2e' away before sending.
    const req = http.request({ host: '127.0.0.1', port, path, ...options }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
  console.log(`${label.padEnd(38)} -> ${reply.status} ${reply.body.slice(0, 60)}`);
};

console.log('\nrefused before any backend is touched:');
await show('GET /api/%2e%2e/secret (traversal)', '/api/%2e%2e/secret');
await show('GET /other (outside pathRewrite)', '/other');
await show('DELETE /api/items', '/api/items', { method: 'DELETE' });
await show('POST /api/items with 4 KiB', '/api/items', { method: 'POST', body: 'x'.repeat(4096), headers: { 'content-type': 'text/plain' } });
await show('GET /api/admin without a token', '/api/admin');
await show('GET /api/items (tokens refill)', '/api/items');

const limited = await request(`${base}/api/items`);
console.log(
  `\nRateLimit headers: limit ${limited.headers['ratelimit-limit']}, remaining ${limited.headers['ratelimit-remaining']}, policy ${limited.headers['ratelimit-policy']}`,
);
console.log(`\nTry: for i in $(seq 15); do curl -s -o /dev/null -w '%{http_code} ' ${base}/api/x; done\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(front);
  await demo.close();
});
