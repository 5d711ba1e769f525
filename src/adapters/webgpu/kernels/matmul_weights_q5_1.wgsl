// Weight accessor, GGUF Q5_1 block variant, prepended to the matmul and embedding kernels by
// weight-formats.ts; w_at dequantizes one element in registers (never expanded in memory).
// Layout: w is [N, K] row-major cut into blocks of 32 elements of a row (K a multiple of 32),
// 24 bytes per block, back to back, read as array<u32> little-endian:
//   bytes 0..1 f16 d | bytes 2..3 f16 m | bytes 4..7 qh (bit j = fifth bit of element j) |
//   bytes 8..23: byte j = low 4 bits of element j (low nibble) and of j + 16 (high nibble)
// Value = d * (nibble | hbit << 4) + m.
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

const W_BLOCK_ELEMENTS: u32 = 32u;
const W_BLOCK_BYTES: u32 = 24u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let j = i % W_BLOCK_ELEMENTS;
  let byte = w_byte(base + 8u + (j & 15u));
  let hbit = (w_byte(base + 4u + (j >> 3u)) >> (j & 7u)) & 1u;
  let q = select(byte & 15u, byte >> 4u, j >= 16u) | (hbit << 4u);
  return w_half(base) * f32(q) + w_half(base + 2u);
}
