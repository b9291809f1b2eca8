/**
 * HTTP/2 in front: browsers and h2 clients speak HTTP/2 (with HTTP/1.1 as the fallback) to the
 * front, the balancer speaks HTTP/1.1 to the backends. The balancer is a plain request listener for
 * Node's HTTP/2 compatibility API, used bare here; Connect and Fastify (`http2: true` + middie) run
 * on those objects too, Express 4 and 5 do not (they replace the request and response prototypes).
 *
 *   npx tsx examples/http2.ts         # PORT (default 8443), BACKEND_PORT (default 3001)
 */
import http2 from 'node:http2';
import { loadBalance, responseCache } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown, startBackends } from './backends.js';
import { selfSignedCertificate } from './certificate.js';

const certificate = selfSignedCertificate();
if (certificate === undefined) process.exit(1);
const { key, cert } = certificate;
const demo = await startBackends(2, { showForwarding: true });
const lb = loadBalance({ targets: demo.urls, cache: responseCache() });

const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, lb);
const port = await listen(server, envPort('PORT', 8443));
console.log(`HTTP/2 front on https://localhost:${port} -> HTTP/1.1 backends ${demo.urls.join(', ')}\n`);

// One request over h2 with Node's own client, trusting exactly our self-signed certificate.
const session = http2.connect(`https://localhost:${port}`, { ca: cert });
const reply = await new Promise<string>((resolve, reject) => {
  const stream = session.request({ ':path': '/whoami' });
  let data = '';
  stream.setEncoding('utf8');
  stream.on('response', (headers) => console.log(`h2 response :status ${headers[':status']}, cache-status ${headers['cache-status']}`));
  stream.on('data', (chunk: string) => (data += chunk));
  stream.on('end', () => resolve(data));
  stream.on('error', reject);
});
session.close();
console.log('The backend answered over HTTP/1.1 (Host came from :authority):');
console.log(JSON.stringify(JSON.parse(reply), null, 2));

console.log(`\nTry (-k accepts the self-signed certificate):
  curl -k --http2 -I https://localhost:${port}/whoami
  curl -k --http1.1 https://localhost:${port}/whoami
Ctrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
