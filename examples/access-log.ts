/**
 * Access logs from the `response` event: one line per finished exchange, in Combined Log Format
 * on stdout and as JSON lines in a file (ACCESS_LOG, default in the temp directory). No logger library:
 * the event carries everything a line needs; hand `info` to pino or winston the same way.
 *
 *   npx tsx examples/access-log.ts     # PORT (default 8080), BACKEND_PORT (default 3001)
 *
 * It sends a few requests itself (a cache miss, a hit, a 405 refusal, a 404 from pathRewrite),
 * then keeps serving: `curl http://localhost:8080/api/hello`. Ctrl+C stops.
 */
import { createWriteStream } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBalance, type ResponseInfo, responseCache } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown, request, startBackends } from './backends.js';

const demo = await startBackends(2);
const lb = loadBalance({
  targets: demo.urls,
  cache: responseCache(),
  allowedMethods: ['GET', 'HEAD', 'POST'],
  pathRewrite: { '^/api': '' },
  // The demo backends say nothing about caching; this makes their answers cacheable for 10 s.
  on: { proxyRes: (proxyRes) => void (proxyRes.headers['cache-control'] ??= 'public, max-age=10') },
});

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `[10/Oct/2000:13:55:36 +0000]`, the Common Log Format's time, in UTC. */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `[${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000]`;
}

const quoted = (value: string | string[] | undefined) => (value === undefined ? '"-"' : `"${String(value).replace(/["\\]/g, '\\$&')}"`);

/**
 * Combined Log Format: `host ident user [time] "request" status bytes "referer" "user-agent"`
 * (the Common Log Format is the same without the last two fields).
 * The bytes field is `bytesOut`, headers included (Apache's %O, NGINX's $bytes_sent); a client
 * that left before any head is logged 499, as NGINX does.
 */
function combined(info: ResponseInfo, req: IncomingMessage): string {
  const status = info.status === 0 ? 499 : info.status;
  const request = `${info.method} ${info.url} HTTP/${req.httpVersion}`;
  return `${info.clientIp} - - ${clfTime(info.time)} ${quoted(request)} ${status} ${info.bytesOut} ${quoted(req.headers.referer)} ${quoted(req.headers['user-agent'])}`;
}

/** A JSON line: the event as it is, the error reduced to its code or message, durations rounded to 0.1 ms. */
function jsonLine(info: ResponseInfo): string {
  const error = info.error === undefined ? undefined : ((info.error as NodeJS.ErrnoException).code ?? info.error.message);
  const round = (ms: number) => (Number.isNaN(ms) ? null : Math.round(ms * 10) / 10);
  return JSON.stringify({ ...info, time: new Date(info.time).toISOString(), headMs: round(info.headMs), durationMs: round(info.durationMs), error });
}

const jsonl = createWriteStream(process.env.ACCESS_LOG ?? join(tmpdir(), 'proxy-balancer-access.jsonl'), { flags: 'a' });
lb.on('response', (info, req) => {
  console.log(combined(info, req));
  jsonl.write(`${jsonLine(info)}\n`);
});

const front = http.createServer(lb);
const port = await listen(front, envPort('PORT', 8080));
const base = `http://127.0.0.1:${port}`;
console.log(`balancer on ${base}; JSON lines go to ${jsonl.path}\n`);

await request(`${base}/api/hello`, { headers: { 'user-agent': 'example/1.0' } });
await request(`${base}/api/hello`, { headers: { referer: `${base}/` } });
await request(`${base}/api/items`, { method: 'DELETE' });
await request(`${base}/elsewhere`);

console.log(`\nStill serving. Try:\n  curl http://localhost:${port}/api/hello\nCtrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(front);
  await demo.close();
  jsonl.end();
});
