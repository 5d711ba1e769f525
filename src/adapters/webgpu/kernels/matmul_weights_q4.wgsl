// Weight accessor, q4 block variant (= GGUF Q4_0), prepended to the matmul and embedding kernels
// by weight-formats.ts; the kernels only ever call w_at, which dequantizes in registers: a
// quantized matrix is never expanded in GPU memory.
// Layout: w is [N, K] row-major cut into blocks of 32 consecutive elements of a row (K is a
// multiple of 32), 18 bytes per block, blocks back to back, read as array<u32> little-endian:
//   bytes 0..1   f16 scale d
//   bytes 2..17  byte j holds element j in its low nibble, element j + 16 in its high nibble
// Flat element i = n * K + k is element i % 32 of block i / 32, whose bytes start at
// (i / 32) * 18 (always even, so the scale never straddles a word).
// Value = d * (nibble - 8) (exact in f32).
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

const W_BLOCK_ELEMENTS: u32 = 32u;
const W_BLOCK_BYTES: u32 = 18u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let j = i % W_BLOCK_ELEMENTS;
  let byte = w_byte(base + 2u + (j & 15u));
  let nibble = select(byte & 15u, byte >> 4u, j >= 16u);
  return w_half(base) * (f32(nibble) - 8.0);
}
