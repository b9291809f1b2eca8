import dns, { type LookupAddress, type LookupOptions } from 'node:dns';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

// IPv4 first: most local servers listen on 127.0.0.1 or on every address (`::` accepts it too);
// a refused loopback connect fails at once, so a server on ::1 alone is reached right after.
const LOOPBACK: readonly LookupAddress[] = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
];

/**
 * `dns.lookup` for upstream connections, except that `localhost` and names under `.localhost`
 * are the loopback addresses of both families (RFC 6761 §6.3, as curl and browsers treat them),
 * whatever the hosts file lists or lists first. With `autoSelectFamily` (happy eyeballs) Node asks
 * for every address and tries them in turn, so a backend listening on 127.0.0.1 alone or on ::1
 * alone is reached either way; Node ≥ 17 keeps the resolver's order, and a hosts file naming
 * only `::1 localhost` (or only 127.0.0.1) reached just one of them. A single-address request (no
 * happy eyeballs) gets the system's answer, which is what a server listening on 'localhost' bound.
 */
export function loopbackAwareLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  if (options.all !== true || !isLocalhost(hostname)) {
    dns.lookup(hostname, options, callback as never);
    return;
  }
  const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
  const addresses = family === 4 || family === 6 ? LOOPBACK.filter((a) => a.family === family) : LOOPBACK.slice();
  process.nextTick(callback, null, addresses);
}

function isLocalhost(hostname: string): boolean {
  const name = hostname.endsWith('.') ? hostname.slice(0, -1).toLowerCase() : hostname.toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost');
}

/** Connection options that reach `localhost` targets on either loopback family; spread under the caller's own. */
export const LOOPBACK_CONNECT = { lookup: loopbackAwareLookup, autoSelectFamily: true } as const;
