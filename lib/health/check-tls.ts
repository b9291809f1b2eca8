import type { ConnectionOptions } from 'node:tls';
import { invalidOption } from '../validate.js';

/** The TLS options a health check of a TLS target takes (the balancer's `agentOptions` do not apply to checks). */
export interface CheckTlsOptions {
  /** For TLS targets: verify the certificate; default true. */
  rejectUnauthorized?: boolean;
  /** For TLS targets: trusted CA certificate(s), PEM; default Node's. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

/** Validates a check's `rejectUnauthorized` and `ca` (errors name them under `prefix`) and returns them as connect options. */
export function checkTlsOptions(options: CheckTlsOptions, prefix: string): ConnectionOptions {
  const { rejectUnauthorized, ca } = options;
  const tls: ConnectionOptions = {};
  if (rejectUnauthorized !== undefined) {
    if (typeof rejectUnauthorized !== 'boolean') invalidOption(prefix, 'rejectUnauthorized', 'a boolean', rejectUnauthorized);
    tls.rejectUnauthorized = rejectUnauthorized;
  }
  if (ca !== undefined) {
    const list = Array.isArray(ca) ? ca : [ca];
    if (list.length === 0 || !list.every((c) => typeof c === 'string' || Buffer.isBuffer(c))) {
      invalidOption(prefix, 'ca', 'a PEM string or Buffer, or an array of them', ca);
    }
    tls.ca = ca as string | Buffer | Array<string | Buffer>;
  }
  return tls;
}
