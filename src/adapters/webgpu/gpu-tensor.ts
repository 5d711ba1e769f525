/**
 * A tensor resident in a GPU buffer.
 * - dtype 'f32': one f32 per element, row-major.
 * - dtype 'f16': IEEE half bits, two per u32 word, little-endian (element i is the low half of
 *   word i/2 when i is even), read in WGSL as `array<u32>` with `unpack2x16float(w)[i & 1]`,
 *   which needs no shader-f16 extension. Rows of f16 matrices have an even length.
 * BF16 checkpoints are converted to f32 at load (exact), since WGSL has no bf16.
 */
export type GpuDtype = 'f32' | 'f16';

export interface GpuTensor {
  readonly buffer: GPUBuffer;
  readonly dtype: GpuDtype;
  readonly shape: readonly number[];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
