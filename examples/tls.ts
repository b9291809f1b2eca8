/**
 * TLS termination: clients speak HTTPS to the front, the front speaks plain HTTP to the backends.
 * The backends learn the original scheme from `X-Forwarded-Proto: https`.
 *
 * The self-signed certificate is generated at run time with the `openssl` CLI into a temporary
 * directory (deleted right away). Use a real certificate in production.
 *
 *   npx tsx examples/tls.ts           # PORT (default 8443), BACKEND_PORT (default 3001)
 */
import https from 'node:https';
import express from 'express';
import { loadBalance } from 'proxy-balancer';
import { closeServer, envPort, listen, onShutdown, startBackends } from './backends.js';
import { selfSignedCertificate } from './certificate.js';

const certificate = selfSignedCertificate();
if (certificate === undefined) process.exit(1);
const { key, cert } = certificate;
const demo = await startBackends(2, { showForwarding: true });
const lb = loadBalance({ targets: demo.urls });

const app = express();
app.use('/api', lb);

const server = https.createServer({ key, cert }, app);
const port = await listen(server, envPort('PORT', 8443));
console.log(`HTTPS front on https://localhost:${port} -> plain HTTP backends ${demo.urls.join(', ')}\n`);

// One request over TLS, trusting exactly our self-signed certificate.
const body = await new Promise<string>((resolve, reject) => {
  const req = https.get({ host: '127.0.0.1', servername: 'localhost', port, path: '/api/whoami', ca: cert, agent: false }, (res) => {
    let data = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (data += chunk));
    res.on('end', () => resolve(data));
  });
  req.on('error', reject);
});
console.log('The backend answered (it saw plain HTTP, and these forwarding headers):');
console.log(JSON.stringify(JSON.parse(body), null, 2));

console.log(`\nTry (-k accepts the self-signed certificate):
  curl -k https://localhost:${port}/api/whoami
Ctrl+C to stop.`);

onShutdown(async () => {
  await lb.close();
  await closeServer(server);
  await demo.close();
});
