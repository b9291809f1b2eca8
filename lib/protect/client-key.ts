import { isIPv6 } from 'node:net';

/**
 * The rate-limit key for a client address. One IPv6 client usually holds a whole /64 (often a
 * /56 or /48) and can change its address at will, so per-address buckets would not limit it: an
 * IPv6 address is reduced to its `/subnet` prefix. IPv4 addresses, IPv4-mapped IPv6 addresses and
 * anything that is not an IP are used as they are.
 */
export function clientKey(address: string, subnet: number): string {
  // Most traffic is IPv4, which has no colon: one scan and out.
  if (address.indexOf(':') === -1 || subnet >= 128) return address;
  if (address.startsWith('::ffff:') && address.indexOf('.') !== -1) return address.slice(7);
  const percent = address.indexOf('%');
  const bare = percent === -1 ? address : address.slice(0, percent);
  if (!isIPv6(bare)) return address;
  const groups = expand(bare);
  let key = '';
  for (let i = 0, bits = subnet; i < 8; i++, bits -= 16) {
    const kept = bits >= 16 ? groups[i]! : bits <= 0 ? 0 : groups[i]! & (0xffff << (16 - bits));
    key += (i === 0 ? '' : ':') + kept.toString(16);
  }
  return `${key}/${subnet}`;
}

/** The eight 16-bit groups of a valid IPv6 address (with `::` and a trailing dotted IPv4 part expanded). */
function expand(address: string): number[] {
  let text = address;
  const dot = text.indexOf('.');
  if (dot !== -1) {
    // A trailing dotted quad ('::1.2.3.4', '64:ff9b::1.2.3.4') is the last two groups.
    const colon = text.lastIndexOf(':');
    const [a, b, c, d] = text
      .slice(colon + 1)
      .split('.')
      .map(Number) as [number, number, number, number];
    text = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const gap = text.indexOf('::');
  const head = gap === -1 ? text.split(':') : text.slice(0, gap) === '' ? [] : text.slice(0, gap).split(':');
  const tail = gap === -1 ? [] : text.slice(gap + 2) === '' ? [] : text.slice(gap + 2).split(':');
  const groups = new Array<number>(8).fill(0);
  for (let i = 0; i < head.length; i++) groups[i] = parseInt(head[i]!, 16);
  for (let i = 0; i < tail.length; i++) groups[8 - tail.length + i] = parseInt(tail[i]!, 16);
  return groups;
}
