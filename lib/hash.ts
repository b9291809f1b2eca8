const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * MurmurHash3 (x86, 32-bit) of the string's UTF-16LE encoding, read two code units per block
 * rather than through a byte buffer so hashing a key allocates nothing. Murmur's final mix gives
 * every input bit a ~50% chance to flip every output bit, so near-identical keys (`…#1`, `…#2`,
 * `/user/41`, `/user/42`) land far apart on a hash ring. Returns an unsigned 32-bit integer.
 */
export function hash32(input: string, seed = 0): number {
  const length = input.length;
  const paired = length & ~1;
  let h = seed | 0;
  for (let i = 0; i < paired; i += 2) {
    h ^= scramble(input.charCodeAt(i) | (input.charCodeAt(i + 1) << 16));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (paired !== length) h ^= scramble(input.charCodeAt(paired));
  h ^= length * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function scramble(block: number): number {
  const k = Math.imul(block, C1);
  return Math.imul((k << 15) | (k >>> 17), C2);
}
