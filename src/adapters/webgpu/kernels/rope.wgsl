// Rotary position embedding, Hugging Face "rotate_half" convention, in place.
// Layout: x f32 [n_tokens, n_heads, head_dim] row-major; positions u32 [n_tokens];
//         inv_freq f32 [head_dim / 2] (from ropeInvFreq, scaling already applied).
// For pair i < half of each (token, head):
//   theta = f32(pos) * inv_freq[i]      (one correctly rounded f32 product, as HF and the CPU do)
//   x[i]        <- x[i] cos(theta) - x[i + half] sin(theta)
//   x[i + half] <- x[i + half] cos(theta) + x[i] sin(theta)
// sin/cos: `sincos` from rope_sincos.wgsl (prepended by ops/basic.ts), accurate to ~1e-7.
// Uniforms: n = n_tokens * n_heads * half, n_heads, half, stride_x.
// Dispatch: one thread per rotated pair, ceil(n / 256) workgroups over x (and y past the limit).

struct Params { n: u32, n_heads: u32, half: u32, stride_x: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.y * params.stride_x + gid.x;
  if (g >= params.n) { return; }
  let half = params.half;
  let i = g % half;
  let th = g / half;                // token * n_heads + head
  let token = th / params.n_heads;
  let theta = f32(positions[token]) * inv_freq[i];
  let cs = sincos(theta);
  let base = th * 2u * half;
  let a = x[base + i];
  let b = x[base + i + half];
  x[base + i] = a * cs.x - b * cs.y;
  x[base + i + half] = b * cs.x + a * cs.y;
}
