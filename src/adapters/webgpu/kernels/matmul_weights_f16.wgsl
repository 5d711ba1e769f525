// Weight accessor for the matmul kernels, packed-f16 variant (prepended to matmul_tiled.wgsl /
// matmul_vec.wgsl by ops/matmul.ts; the kernels only ever call w_at).
// Layout: w is [N, K] row-major (HF Linear layout) as IEEE half bits, two per u32 word,
// little-endian: flat element i = n * K + k is the low half of word i / 2 when i is even, the high
// half when odd. K is even, so every row starts on a word boundary.
// unpack2x16float needs no shader-f16 extension and widens exactly, so the arithmetic that follows
// is the same f32 arithmetic as the f32 variant.

@group(0) @binding(1) var<storage, read> w: array<u32>;

fn w_at(i: u32) -> f32 {
  let pair = unpack2x16float(w[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}

// Elements i .. i + 3 (i a multiple of 4): two whole words, no lane select.
fn w_at4(i: u32) -> vec4<f32> {
  let word = i >> 1u;
  return vec4<f32>(unpack2x16float(w[word]), unpack2x16float(w[word + 1u]));
}
