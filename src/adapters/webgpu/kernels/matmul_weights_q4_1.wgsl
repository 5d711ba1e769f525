// Weight accessor, GGUF Q4_1 block variant, prepended to the matmul and embedding kernels by
// weight-formats.ts; w_at dequantizes one element in registers (never expanded in memory).
// Layout: w is [N, K] row-major cut into blocks of 32 elements of a row (K a multiple of 32),
// 20 bytes per block, back to back, read as array<u32> little-endian:
//   bytes 0..1 f16 d | bytes 2..3 f16 m | bytes 4..19: byte j = element j (low nibble), j + 16 (high)
// Value = d * nibble + m. Block starts are even, so the f16 fields never straddle a word.
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

const W_BLOCK_ELEMENTS: u32 = 32u;
const W_BLOCK_BYTES: u32 = 20u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let j = i % W_BLOCK_ELEMENTS;
  let byte = w_byte(base + 4u + (j & 15u));
  let nibble = select(byte & 15u, byte >> 4u, j >= 16u);
  return w_half(base) * f32(nibble) + w_half(base + 2u);
}
