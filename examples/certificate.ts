/**
 * A self-signed certificate for localhost, generated at run time with the `openssl` CLI into a
 * temporary directory (deleted right away), for the TLS and HTTP/2 examples and the tests. Use a
 * real certificate in production.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Key and certificate (PEM) for localhost and 127.0.0.1, valid for a day. Throws if openssl fails or is missing. */
export function generateCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-balancer-tls-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `generateCertificate()`, or undefined after telling the user what is missing. */
export function selfSignedCertificate(): { key: string; cert: string } | undefined {
  try {
    return generateCertificate();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error('This example needs the `openssl` command to generate a self-signed certificate, and it was not found on PATH.');
      console.error('Install OpenSSL (e.g. `apt-get install openssl`, `brew install openssl`) or use your own key and certificate.');
    } else {
      console.error(`openssl failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
    }
    return undefined;
  }
}
