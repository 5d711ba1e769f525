// Weight accessor, GGUF Q4_K super-block variant, prepended to the matmul and embedding kernels
// by weight-formats.ts; w_at dequantizes one element in registers (never expanded in memory).
// Layout: w is [N, K] row-major cut into super-blocks of 256 elements of a row (K a multiple of
// 256), 144 bytes each, back to back, read as array<u32> little-endian:
//   bytes 0..1 f16 d | 2..3 f16 dmin | 4..15 eight 6-bit (scale, min) pairs | 16..143 qs
// Element e: group g = e / 64 of 32 bytes qs[32g..32g+31]; e % 64 < 32 reads the low nibble of
// qs[32g + e % 32] with pair 2g, else the high nibble with pair 2g + 1.
// Value = (d * scale) * nibble - dmin * min.
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

// The j-th 6-bit (scale, min) pair packed in the 12 bytes at s (ggml get_scale_min_k4).
fn w_scale_min(s: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(w_byte(s + j) & 63u, w_byte(s + j + 4u) & 63u);
  }
  let b = w_byte(s + j + 4u);
  return vec2<u32>((b & 15u) | ((w_byte(s + j - 4u) >> 6u) << 4u), (b >> 4u) | ((w_byte(s + j) >> 6u) << 4u));
}

const W_BLOCK_ELEMENTS: u32 = 256u;
const W_BLOCK_BYTES: u32 = 144u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let e = i % W_BLOCK_ELEMENTS;
  let g = e >> 6u;
  let high = (e & 32u) != 0u;
  let sm = w_scale_min(base + 4u, 2u * g + select(0u, 1u, high));
  let byte = w_byte(base + 16u + 32u * g + (e & 31u));
  let q = select(byte & 15u, byte >> 4u, high);
  return (w_half(base) * f32(sm.x)) * f32(q) - w_half(base + 2u) * f32(sm.y);
}
