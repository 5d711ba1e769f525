// Weight accessor, bf16 variant (prepended to the matmul and embedding kernels by
// weight-formats.ts; the kernels only ever call w_at).
// Layout: w is [N, K] row-major as bfloat16 bits (the checkpoint's bytes, unchanged), two per
// u32 word, little-endian: flat element i = n * K + k is the low half of word i / 2 when i is
// even, the high half when odd. K is even, so every row starts on a word boundary.
// bf16 is the top half of an f32, so widening is a shift (or a mask) and a bitcast: exact, and
// the arithmetic that follows is the same f32 arithmetic as every other variant.

@group(0) @binding(1) var<storage, read> w: array<u32>;

fn w_at(i: u32) -> f32 {
  let word = w[i >> 1u];
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));
}

// Elements i .. i + 3 (i a multiple of 4): two whole words.
fn w_at4(i: u32) -> vec4<f32> {
  let a = w[i >> 1u];
  let b = w[(i >> 1u) + 1u];
  return vec4<f32>(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xffff0000u), bitcast<f32>(b << 16u), bitcast<f32>(b & 0xffff0000u));
}
