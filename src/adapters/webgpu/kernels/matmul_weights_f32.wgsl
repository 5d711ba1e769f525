// Weight accessor for the matmul kernels, f32 variant (prepended to matmul_tiled.wgsl /
// matmul_vec.wgsl by ops/matmul.ts; the kernels only ever call w_at).
// Layout: w is [N, K] row-major (HF Linear layout), one f32 per element; element (n, k) is at
// flat index i = n * K + k.

@group(0) @binding(1) var<storage, read> w: array<f32>;

fn w_at(i: u32) -> f32 {
  return w[i];
}

// Elements i .. i + 3 (i a multiple of 4).
fn w_at4(i: u32) -> vec4<f32> {
  return vec4<f32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]);
}
