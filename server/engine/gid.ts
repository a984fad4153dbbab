import { randomBytes } from "node:crypto";

// Crockford base32, as ULID uses: sorts the same as a string and as a number.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A ULID-style gid: 10 characters of milliseconds since the epoch, then 16 random characters
 * (80 bits), so gids sort by creation time and never collide across coordinators in practice.
 */
export function newGid(now = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = randomBytes(10);
  let rest = "";
  let acc = 0;
  let bits = 0;
  for (const byte of random) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rest += ALPHABET[(acc >> bits) & 31];
    }
  }
  return time + rest;
}
