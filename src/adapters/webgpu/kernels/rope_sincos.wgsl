// sincos for the RoPE kernels (prepended to rope.wgsl and rope_kv.wgsl by their ops).
// Why our own sin/cos: WGSL only promises 2^-11 absolute error for the builtins on [-pi, pi] and
// nothing beyond, and SwiftShader's are off by ~2e-4 even for small angles. `sincos` below does a
// Cody-Waite reduction by pi/2 (pi/2 split into C1 + C2 + C3, C1 and C2 with 8 significant bits,
// so k * C1 and k * C2 are exact for k < 2^16, i.e. theta up to ~1e5) followed by the cephes
// single-precision minimax polynomials on [-pi/4, pi/4]. Error about 1e-7 absolute, using only
// correctly rounded f32 + - * (an FMA contraction by the driver only makes it more accurate).

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
