/**
 * A 64-bit content hash (two independent 32-bit lanes, hex) for model fingerprints. Not
 * cryptographic: it names weights so caches never cross models, it does not defend against
 * someone forging a checkpoint.
 */
export class Hash64 {
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193 ^ 0x5bd1e995;

  update(bytes: Uint8Array): this {
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      h1 = Math.imul(h1 ^ b, 0x01000193);
      h2 = Math.imul(h2 ^ b, 0x5bd1e995) ^ (h2 >>> 15);
    }
    this.h1 = h1;
    this.h2 = h2;
    return this;
  }

  updateString(text: string): this {
    return this.update(new TextEncoder().encode(text));
  }

  updateNumber(n: number): this {
    return this.updateString(`#${n};`);
  }

  digest(): string {
    const f1 = Math.imul(this.h1 ^ (this.h1 >>> 16), 0x85ebca6b) ^ Math.imul(this.h2, 0xc2b2ae35);
    const f2 = Math.imul(this.h2 ^ (this.h2 >>> 13), 0xc2b2ae35) ^ Math.imul(f1, 0x27d4eb2f);
    return (f1 >>> 0).toString(16).padStart(8, '0') + (f2 >>> 0).toString(16).padStart(8, '0');
  }
}

/** Bytes sampled evenly from a large buffer: fingerprints stay fast on multi-GB checkpoints. */
export function sampleBytes(bytes: Uint8Array, samples = 64, sampleSize = 1024): Uint8Array[] {
  return sampleRanges(bytes.length, samples, sampleSize).map(([begin, end]) => bytes.subarray(begin, end));
}

/**
 * The [begin, end) ranges sampleBytes takes from `length` bytes, so a stream can keep exactly
 * those bytes as they pass and hash the same samples as the whole-buffer path.
 */
export function sampleRanges(length: number, samples = 64, sampleSize = 1024): Array<[number, number]> {
  if (length <= samples * sampleSize) return [[0, length]];
  const out: Array<[number, number]> = [];
  const step = Math.floor((length - sampleSize) / (samples - 1));
  for (let i = 0; i < samples; i++) out.push([i * step, i * step + sampleSize]);
  return out;
}
