/**
 * Scale-out: node:cluster workers on every core, each running its own balancer, all sharing one
 * Redis for the response cache (a tieredStore: each worker's memory in front of Redis) and the
 * rate limits. The primary starts three demo backends, forks the workers, then shows a response
 * stored by one worker served as a HIT by the others.
 *
 *   redis-server --port 6379 &          # or point REDIS_URL at yours
 *   npx tsx examples/cluster.ts         # PORT (default 8080), REDIS_URL (default redis://127.0.0.1:6379)
 */
import cluster from 'node:cluster';
import http from 'node:http';
import os from 'node:os';
import { Redis } from 'ioredis';
import { loadBalance, redisRateLimitStore, redisStore, responseCache, tieredStore } from 'proxy-balancer';
import { envPort, onShutdown, request, startBackends } from './backends.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PORT = envPort('PORT', 8080);

if (cluster.isPrimary) {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.flushdb();
  } catch {
    console.error(`No Redis at ${REDIS_URL}. Start one (redis-server --port 6379) or set REDIS_URL.`);
    process.exit(1);
  }
  probe.disconnect();

  const demo = await startBackends(3, { firstPort: 0 });
  const workers = Math.max(2, os.availableParallelism());
  console.log(`primary ${process.pid}: ${demo.urls.length} backends, forking ${workers} workers on port ${PORT}`);
  for (let i = 0; i < workers; i++) cluster.fork({ TARGETS: demo.urls.join(','), WORKER_INDEX: String(i) });
  let ready = 0;
  cluster.on('message', async (_worker, message) => {
    if (message !== 'listening' || ++ready < workers) return;
    for (let i = 0; i < 6; i++) {
      const reply = await request(`http://127.0.0.1:${PORT}/catalog`, { agent: false });
      console.log(
        `GET /catalog -> worker ${reply.headers['x-worker']}: Cache-Status ${reply.headers['cache-status']}, RateLimit-Remaining ${reply.headers['ratelimit-remaining']}`,
      );
    }
    console.log(`\nOne MISS, then HITs whichever worker answers: the workers share the Redis cache and the rate-limit buckets.`);
    console.log(`Try: curl -i http://localhost:${PORT}/catalog   — Ctrl+C to stop.`);
  });
  onShutdown(async () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    await demo.close();
  });
} else {
  const redis = new Redis(REDIS_URL);
  // Hits from this worker's memory; misses from Redis; purges reach every worker through pub/sub.
  const store = tieredStore({ l2: redisStore(redis) });
  const lb = loadBalance({
    targets: (process.env.TARGETS ?? '').split(','),
    cache: responseCache({ store }),
    rateLimit: { limit: 100, windowMs: 60_000, store: redisRateLimitStore(redis) },
    on: { proxyRes: (proxyRes) => void (proxyRes.headers['cache-control'] = 'public, max-age=30') },
  });
  const server = http.createServer((req, res) => {
    res.setHeader('x-worker', process.env.WORKER_INDEX ?? '?');
    lb(req, res);
  });
  server.listen(PORT, () => process.send?.('listening'));
  process.on('SIGTERM', async () => {
    server.close();
    await lb.close();
    await store.close();
    redis.disconnect();
    process.exit(0);
  });
}
