// Weight accessor, GGUF Q5_0 block variant, prepended to the matmul and embedding kernels by
// weight-formats.ts; w_at dequantizes one element in registers (never expanded in memory).
// Layout: w is [N, K] row-major cut into blocks of 32 elements of a row (K a multiple of 32),
// 22 bytes per block, back to back, read as array<u32> little-endian:
//   bytes 0..1 f16 d | bytes 2..5 qh (bit j = fifth bit of element j) |
//   bytes 6..21: byte j = low 4 bits of element j (low nibble) and of j + 16 (high nibble)
// Value = d * ((nibble | hbit << 4) - 16).
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

const W_BLOCK_ELEMENTS: u32 = 32u;
const W_BLOCK_BYTES: u32 = 22u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let j = i % W_BLOCK_ELEMENTS;
  let byte = w_byte(base + 6u + (j & 15u));
  let hbit = (w_byte(base + 2u + (j >> 3u)) >> (j & 7u)) & 1u;
  let q = select(byte & 15u, byte >> 4u, j >= 16u) | (hbit << 4u);
  return w_half(base) * (f32(q) - 16.0);
}
