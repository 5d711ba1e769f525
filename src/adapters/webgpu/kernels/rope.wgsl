// Rotary position embedding, Hugging Face "rotate_half" convention, in place.
// Layout: x f32 [n_tokens, n_heads, head_dim] row-major; positions u32 [n_tokens];
//         inv_freq f32 [head_dim / 2] (from ropeInvFreq, scaling already applied).
// For pair i < half of each (token, head):
//   theta = f32(pos) * inv_freq[i]      (one correctly rounded f32 product, as HF and the CPU do)
//   x[i]        <- x[i] cos(theta) - x[i + half] sin(theta)
//   x[i + half] <- x[i + half] cos(theta) + x[i] sin(theta)
// Why our own sin/cos: WGSL only promises 2^-11 absolute error for the builtins on [-pi, pi] and
// nothing beyond, and SwiftShader's are off by ~2e-4 even for small angles. `sincos` below does a
// Cody-Waite reduction by pi/2 (pi/2 split into C1 + C2 + C3, C1 and C2 with 8 significant bits,
// so k * C1 and k * C2 are exact for k < 2^16, i.e. theta up to ~1e5) followed by the cephes
// single-precision minimax polynomials on [-pi/4, pi/4]. Error about 1e-7 absolute, using only
// correctly rounded f32 + - * (an FMA contraction by the driver only makes it more accurate).
// Uniforms: n = n_tokens * n_heads * half, n_heads, half, stride_x.
// Dispatch: one thread per rotated pair, ceil(n / 256) workgroups over x (and y past the limit).

struct Params { n: u32, n_heads: u32, half: u32, stride_x: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

const TWO_OVER_PI: f32 = 0.636619772;
const C1: f32 = 1.5703125;
const C2: f32 = 0.0004825592041015625;
const C3: f32 = 0.00000126759085;

// Returns (cos(t), sin(t)).
fn sincos(t: f32) -> vec2<f32> {
  let k = round(t * TWO_OVER_PI);
  var r = t - k * C1;
  r = r - k * C2;
  r = r - k * C3;
  let z = r * r;
  let s = r + r * (z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1));
  let c = (1.0 - 0.5 * z) + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
  let q = u32(i32(k)) & 3u;
  if (q == 0u) { return vec2<f32>(c, s); }
  if (q == 1u) { return vec2<f32>(-s, c); }
  if (q == 2u) { return vec2<f32>(-c, -s); }
  return vec2<f32>(s, -c);
}

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
