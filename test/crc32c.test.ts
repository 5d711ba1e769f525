import { describe, expect, it } from 'vitest';
import { crc32c, crc32cHex } from '../src/domain/crc32c.ts';

/** Bit-at-a-time CRC-32C straight from the definition: the independent reference. */
function slowCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('crc32c', () => {
  it('matches the published check value and the bitwise definition', () => {
    // RFC 3720 (iSCSI) check value of "123456789".
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32cHex(new Uint8Array(32))).toBe(slowCrc32c(new Uint8Array(32)).toString(16).padStart(8, '0'));
    let s = 7;
    for (const len of [0, 1, 7, 8, 9, 63, 64, 1000, 4099]) {
      const bytes = Uint8Array.from({ length: len }, () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24);
      expect(crc32c(bytes), `length ${len}`).toBe(slowCrc32c(bytes));
    }
  });

  it('continues over pieces and notices any single flipped bit', () => {
    const bytes = Uint8Array.from({ length: 257 }, (_, i) => (i * 31) & 0xff);
    expect(crc32c(bytes.subarray(100), crc32c(bytes.subarray(0, 100)))).toBe(crc32c(bytes));
    const base = crc32c(bytes);
    for (let bit = 0; bit < bytes.length * 8; bit += 13) {
      const flipped = bytes.slice();
      flipped[bit >> 3] ^= 1 << (bit & 7);
      expect(crc32c(flipped)).not.toBe(base);
    }
  });
});
