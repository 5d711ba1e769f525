// Weight accessor, MLX affine groups (mlx-community quantized safetensors), prepended to the
// matmul and embedding kernels by weight-formats.ts; w_at dequantizes one element in registers
// (the packed words are never expanded in GPU memory).
// Before this file weight-formats.ts prepends matmul_weights_bytes.wgsl (`w`) and the format's
// constants: MLX_BITS (2, 4 or 8), MLX_GROUP (32, 64 or 128) and MLX_BF16 (scale/bias dtype).
// Layout: w is [N, K] row-major cut into groups of MLX_GROUP consecutive elements of a row (K a
// multiple of MLX_GROUP), each group 4 + MLX_GROUP * MLX_BITS / 8 bytes, back to back, read as
// array<u32> little-endian:
//   bytes 0..1  scale (f16, or bf16 when MLX_BF16)    bytes 2..3  bias (same dtype)
//   bytes 4..   the file's packed u32 words of the group: element j of the group sits in word
//               j / (32 / MLX_BITS), bits (j % (32 / MLX_BITS)) * MLX_BITS upwards
// (domain/mlx-quant.ts builds these blocks from X.weight, X.scales and X.biases). Block sizes are
// multiples of 4, so every block starts on a word and the packed words are whole words.
// Value = scale * q + bias.

const MLX_BLOCK_WORDS: u32 = 1u + MLX_GROUP * MLX_BITS / 32u;
const MLX_PER_WORD: u32 = 32u / MLX_BITS;
const MLX_MASK: u32 = (1u << MLX_BITS) - 1u;

// A 16-bit float from half of a word (hi selects the upper half).
fn mlx_half(word: u32, hi: bool) -> f32 {
  let bits = select(word & 0xffffu, word >> 16u, hi);
  if (MLX_BF16) {
    return bitcast<f32>(bits << 16u);
  }
  return unpack2x16float(bits).x;
}

fn w_at(i: u32) -> f32 {
  let base = (i / MLX_GROUP) * MLX_BLOCK_WORDS;
  let j = i % MLX_GROUP;
  let head = w[base];
  let q = (w[base + 1u + j / MLX_PER_WORD] >> ((j % MLX_PER_WORD) * MLX_BITS)) & MLX_MASK;
  return mlx_half(head, false) * f32(q) + mlx_half(head, true);
}
