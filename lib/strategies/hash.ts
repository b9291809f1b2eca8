/**
 * MurmurHash3 (x86, 32-bit) of the string's UTF-16LE encoding, read two code units per block
 * rather than through a byte buffer so hashing a key allocates nothing. Murmur's final mix gives
 * every input bit a ~50% chance to flip every output bit, so near-identical keys (`/user/41`,
 * `/user/42`) land far apart on a hash ring. Returns an unsigned 32-bit integer.
 */
export function hash32(input: string, seed = 0): number {
  const length = input.length;
  const paired = length & ~1;
  let h = seed | 0;
  for (let i = 0; i < paired; i += 2) h = mixBlock(h, input.charCodeAt(i) | (input.charCodeAt(i + 1) << 16));
  if (paired !== length) h ^= scramble(input.charCodeAt(paired));
  return finalize(h, length * 2);
}

/**
 * MurmurHash3 (x86, 32-bit) of three 32-bit words (their little-endian bytes), for hashing numbers
 * such as ring points without formatting them into a string first.
 */
export function hash32Words(a: number, b: number, c: number, seed = 0): number {
  return finalize(mixBlock(mixBlock(mixBlock(seed | 0, a), b), c), 12);
}

function mixBlock(h: number, block: number): number {
  const mixed = h ^ scramble(block);
  return (Math.imul((mixed << 13) | (mixed >>> 19), 5) + 0xe6546b64) | 0;
}

function scramble(block: number): number {
  const k = Math.imul(block, 0xcc9e2d51);
  return Math.imul((k << 15) | (k >>> 17), 0x1b873593);
}

function finalize(h: number, byteLength: number): number {
  let x = h ^ byteLength;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
