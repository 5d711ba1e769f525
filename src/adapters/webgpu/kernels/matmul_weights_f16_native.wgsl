// Weight accessor for the matmul kernels, shader-f16 variant (used only when the device has the
// shader-f16 feature; prepended to matmul_tiled.wgsl / matmul_vec.wgsl by ops/matmul.ts).
// Layout: w is [N, K] row-major (HF Linear layout) as IEEE half values, the same bytes as the
// packed-u32 variant, read natively as array<f16>.
// f16 -> f32 widening is exact, so results are bitwise identical to the unpack2x16float variant;
// the native load just skips the unpack and select.
enable f16;

@group(0) @binding(1) var<storage, read> w: array<f16>;

fn w_at(i: u32) -> f32 {
  return f32(w[i]);
}

// Elements i .. i + 3 (i a multiple of 4).
fn w_at4(i: u32) -> vec4<f32> {
  return vec4<f32>(f32(w[i]), f32(w[i + 1u]), f32(w[i + 2u]), f32(w[i + 3u]));
}
