// Weight accessor, q8 block variant (= GGUF Q8_0), prepended to the matmul and embedding kernels
// by weight-formats.ts; the kernels only ever call w_at, which dequantizes in registers: a
// quantized matrix is never expanded in GPU memory.
// Layout: w is [N, K] row-major cut into blocks of 32 consecutive elements of a row (K is a
// multiple of 32), 34 bytes per block, blocks back to back, read as array<u32> little-endian:
//   bytes 0..1   f16 scale d
//   bytes 2..33  int8 q[0..31]
// Flat element i = n * K + k is element i % 32 of block i / 32, whose bytes start at
// (i / 32) * 34 (always even, so the scale never straddles a word). Value = d * q (exact in f32).
// Any fixed-size block layout plugs in the same way: a W_BLOCK constant pair and a w_at that
// decodes one element (see weight-formats.ts and domain/weight-blocks.ts).
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

const W_BLOCK_ELEMENTS: u32 = 32u;
const W_BLOCK_BYTES: u32 = 34u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let q = bitcast<i32>(w_byte(base + 2u + i % W_BLOCK_ELEMENTS) << 24u) >> 24u;
  return w_half(base) * f32(q);
}
