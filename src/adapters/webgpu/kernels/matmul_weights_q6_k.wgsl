// Weight accessor, GGUF Q6_K super-block variant, prepended to the matmul and embedding kernels
// by weight-formats.ts; w_at dequantizes one element in registers (never expanded in memory).
// Layout: w is [N, K] row-major cut into super-blocks of 256 elements of a row (K a multiple of
// 256), 210 bytes each, back to back, read as array<u32> little-endian:
//   bytes 0..127 ql (low 4 bits) | 128..191 qh (high 2 bits) | 192..207 int8 scales | 208..209 f16 d
// Element e: half h = e / 128, quarter t = (e % 128) / 32, l = e % 32. Low bits: nibble
// (t >= 2: high) of ql[64h + l + 32 (t & 1)]; high bits: bits 2t..2t+1 of qh[32h + l];
// scale: scales[8h + l / 16 + 2t]. Value = (d * scale) * (q - 32).
// `w`, w_byte and w_half come from matmul_weights_bytes.wgsl, prepended before this file.

const W_BLOCK_ELEMENTS: u32 = 256u;
const W_BLOCK_BYTES: u32 = 210u;

fn w_at(i: u32) -> f32 {
  let base = (i / W_BLOCK_ELEMENTS) * W_BLOCK_BYTES;
  let e = i % W_BLOCK_ELEMENTS;
  let h = e >> 7u;
  let t = (e & 127u) >> 5u;
  let l = e & 31u;
  let lo = w_byte(base + 64u * h + l + 32u * (t & 1u));
  let hi = (w_byte(base + 128u + 32u * h + l) >> (2u * t)) & 3u;
  let q = select(lo & 15u, lo >> 4u, t >= 2u) | (hi << 4u);
  let scale = bitcast<i32>(w_byte(base + 192u + 8u * h + (l >> 4u) + 2u * t) << 24u) >> 24u;
  return (w_half(base + 208u) * f32(scale)) * (f32(q) - 32.0);
}
