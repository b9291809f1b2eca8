/**
 * The response cache in front of the balancer: a miss then hits served from memory, a
 * revalidation answered 304 by the backend, and a purge.
 *
 *   npx tsx examples/cache.ts     # PORT (default 8080)
 */
import http from 'node:http';
import { loadBalance, responseCache } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown, request } from './backends.js';

let upstreamRequests = 0;
const backend = http.createServer((req, res) => {
  upstreamRequests++;
  if (req.url === '/news') {
    // Must be revalidated each time: cheap when the backend can answer 304.
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('etag', '"news-v1"');
    if (req.headers['if-none-match'] === '"news-v1"') {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.end('today: nothing happened\n');
    return;
  }
  res.setHeader('cache-control', 'public, max-age=30, stale-while-revalidate=60, stale-if-error=600');
  res.setHeader('content-type', 'text/plain');
  res.end(`product page rendered at ${new Date().toISOString()}\n`);
});
const backendPort = await listen(backend, 0);

const lb = loadBalance({
  targets: [`http://127.0.0.1:${backendPort}`],
  cache: responseCache({ maxSize: 16 * 1024 * 1024, maxEntrySize: 1024 * 1024, compress: true }),
});
const front = http.createServer(lb);
const port = await listen(front, envPort('PORT', 8080));
const base = `http://127.0.0.1:${port}`;
const show = async (path: string): Promise<void> => {
  const before = upstreamRequests;
  const reply = await request(`${base}${path}`);
  console.log(
    `GET ${path.padEnd(14)} -> ${reply.status} Cache-Status: ${String(reply.headers['cache-status']).padEnd(46)} Age: ${reply.headers.age ?? '-'}  upstream requests: +${upstreamRequests - before}`,
  );
};

console.log(`cache in front of one backend, on ${base}\n`);
await show('/products/1');
await show('/products/1');
await show('/products/1');
console.log('\nno-cache with an ETag: every request revalidates, the backend answers 304, the client gets 200');
await show('/news');
await show('/news');
console.log('\npurge, then the next request is a miss again');
const removed = await lb.cache!.purge(`http://127.0.0.1:${port}/products/1`);
console.log(`purge removed ${removed} key(s)`);
await show('/products/1');
console.log('\ncache stats:', lb.stats().cache);
console.log(`\nTry: curl -i ${base}/products/1   (repeat it: Cache-Status: proxy-balancer; hit, Age grows)\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(front);
  await closeServer(backend);
});
