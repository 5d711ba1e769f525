/**
 * MLX affine quantization of an f32 matrix, as mlx.core.quantize lays it out (the fixture
 * tools' side; the runtime only decodes): per group of `groupSize` elements of a row,
 * scale = (max - min) / (2^bits - 1) and bias = min, both rounded to the scale dtype first, then
 * q = clamp(round((x - bias) / scale), 0, 2^bits - 1), packed little-endian into u32 words
 * (element j of a word at bits j*bits). MLX itself picks the bias at the group's larger-magnitude
 * edge; the format (what the runtime must read) is the same.
 */
import { f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32, f16BitsToF32 } from '../src/domain/half.ts';

export interface MlxQuantized {
  readonly weight: Uint32Array;
  readonly scales: Uint16Array;
  readonly biases: Uint16Array;
}

export function mlxQuantize(x: Float32Array, cols: number, bits: number, groupSize: number, scaleDtype: 'F16' | 'BF16'): MlxQuantized {
  const toBits = scaleDtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
  const fromBits = scaleDtype === 'BF16' ? bf16BitsToF32 : f16BitsToF32;
  const groups = x.length / groupSize;
  const maxQ = (1 << bits) - 1;
  const perWord = 32 / bits;
  const weight = new Uint32Array(x.length / perWord);
  const scales = new Uint16Array(groups);
  const biases = new Uint16Array(groups);
  if (cols % groupSize !== 0) throw new RangeError(`cols ${cols} is not a multiple of group_size ${groupSize}`);
  for (let g = 0; g < groups; g++) {
    const v = x.subarray(g * groupSize, (g + 1) * groupSize);
    let lo = Infinity;
    let hi = -Infinity;
    for (const e of v) {
      lo = Math.min(lo, e);
      hi = Math.max(hi, e);
    }
    scales[g] = toBits(hi > lo ? (hi - lo) / maxQ : 1);
    biases[g] = toBits(lo);
    const s = fromBits(scales[g]);
    const b = fromBits(biases[g]);
    for (let j = 0; j < groupSize; j++) {
      const q = Math.min(maxQ, Math.max(0, Math.round((v[j] - b) / s)));
      const i = g * groupSize + j;
      weight[Math.floor(i / perWord)] |= q << ((i % perWord) * bits);
    }
  }
  // `|=` on a Uint32Array stores the low 32 bits of a signed result: the words are exact.
  return { weight, scales, biases };
}
