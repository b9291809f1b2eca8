import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/**
 * Which proxies in front of this server are trusted to report the client address:
 * `false` (default) trusts none and uses the socket peer; `true` trusts every hop (the left-most
 * address wins); a number trusts that many hops from the socket; addresses, CIDR ranges or the
 * names `loopback`, `linklocal`, `uniquelocal` trust those peers; a function decides per hop.
 */
export type TrustProxy = boolean | number | string | readonly string[] | ((address: string, hop: number) => boolean);

/** The header a trusted proxy reports client addresses in. */
export type ClientIpHeader = 'x-forwarded-for' | 'forwarded';

const kClientIp = Symbol('proxy-balancer.clientIp');
type WithClientIp = IncomingMessage & { [kClientIp]?: string };

/**
 * The client address for `req`: resolved through the balancer's `trustProxy` rules when it set
 * any, otherwise the socket peer address. Strategies (IP hash) and limiters use this.
 */
export function clientIp(req: IncomingMessage): string {
  return (req as WithClientIp)[kClientIp] ?? req.socket.remoteAddress ?? '';
}

/** Resolves client addresses from forwarding headers, trusting only the configured hops. */
export class ClientIpResolver {
  readonly #trust: (address: string, hop: number) => boolean;
  readonly #header: ClientIpHeader;

  constructor(trustProxy: Exclude<TrustProxy, false>, header: ClientIpHeader) {
    this.#trust = compileTrust(trustProxy);
    this.#header = header;
  }

  /** Whether the socket peer of `req` is a proxy we trust to report forwarding headers. */
  trusts(req: IncomingMessage): boolean {
    return this.#trust(req.socket.remoteAddress ?? '', 0);
  }

  /** Resolves and remembers the client address of `req` so `clientIp(req)` returns it. */
  resolve(req: IncomingMessage): string {
    const socketAddress = req.socket.remoteAddress ?? '';
    const value = req.headers[this.#header];
    let ip = socketAddress;
    if (value !== undefined) {
      const hops = this.#header === 'forwarded' ? forwardedFor(String(value)) : String(value).split(',');
      // Walk from the socket outwards; the first hop we do not trust is the client.
      let address = socketAddress;
      for (let hop = 0, i = hops.length - 1; this.#trust(address, hop) && i >= 0; hop++, i--) {
        address = hops[i]!.trim();
      }
      ip = address;
    }
    (req as WithClientIp)[kClientIp] = ip;
    return ip;
  }
}

function compileTrust(trust: Exclude<TrustProxy, false>): (address: string, hop: number) => boolean {
  if (trust === true) return () => true;
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  if (typeof trust === 'function') return trust;
  const list = typeof trust === 'string' ? trust.split(',').map((s) => s.trim()) : [...trust];
  try {
    return proxyaddr.compile(list);
  } catch (err) {
    throw new TypeError(`trustProxy: ${(err as Error).message}`);
  }
}

/** `for=` values of an RFC 7239 Forwarded header, without quotes, brackets or ports. */
export function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      out.push(stripNode(pair.slice(eq + 1).trim()));
    }
  }
  return out;
}

function stripNode(node: string): string {
  let value = node.startsWith('"') && node.endsWith('"') ? node.slice(1, -1) : node;
  if (value.startsWith('[')) return value.slice(1, value.indexOf(']'));
  const colon = value.indexOf(':');
  if (colon !== -1 && colon === value.lastIndexOf(':')) value = value.slice(0, colon);
  return value;
}
