import { BlockList, isIP } from 'node:net';
import { fail } from '../validate.js';

/** Client addresses let in or kept out, as addresses or CIDR ranges, IPv4 or IPv6. */
export interface IpFilterOptions {
  /** Only these addresses/ranges may pass (e.g. `['10.0.0.0/8', '2001:db8::/32']`); default: everyone. */
  allow?: readonly string[];
  /** These addresses/ranges are refused, even when `allow` matches them; default: no one. */
  deny?: readonly string[];
}

/**
 * Allow and deny lists on `net.BlockList` (native, and it matches IPv4-mapped IPv6 addresses such
 * as `::ffff:10.0.0.1` against IPv4 ranges). Deny wins over allow.
 */
export class IpFilter {
  readonly #allow: BlockList | undefined;
  readonly #deny: BlockList | undefined;

  constructor(options: IpFilterOptions) {
    this.#allow = options.allow === undefined ? undefined : compile(options.allow, 'ipFilter.allow');
    this.#deny = options.deny === undefined ? undefined : compile(options.deny, 'ipFilter.deny');
  }

  /** Whether `address` may pass. An address that is not an IP (a junk forwarded entry) passes only when there is no allow list. */
  permits(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return this.#allow === undefined;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.#deny?.check(address, type)) return false;
    return this.#allow === undefined || this.#allow.check(address, type);
  }
}

const DIGITS = /^\d{1,3}$/;

function compile(entries: unknown, option: string): BlockList {
  if (!Array.isArray(entries) || !entries.every((e) => typeof e === 'string')) fail(option, 'an array of addresses or CIDR ranges', entries);
  const list = new BlockList();
  for (const entry of entries as string[]) {
    const slash = entry.indexOf('/');
    const address = (slash === -1 ? entry : entry.slice(0, slash)).trim();
    const family = isIP(address);
    const bits = slash === -1 ? undefined : entry.slice(slash + 1).trim();
    const prefix = bits === undefined ? undefined : DIGITS.test(bits) ? Number(bits) : Number.NaN;
    const max = family === 4 ? 32 : 128;
    if (family === 0 || (prefix !== undefined && !(Number.isInteger(prefix) && prefix >= 0 && prefix <= max))) {
      throw new TypeError(`loadBalance: options.${option} has an invalid address or CIDR range ${JSON.stringify(entry)}`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  return list;
}
