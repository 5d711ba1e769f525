// Matvec / small-batch matmul for decode (few rows): out[m, n] = sum_k x[x_row0 + m, k] * W[n, k]
// (+ bias[n]). Decode is bound by reading W, so each workgroup streams a 64-row slab of W exactly
// once (coalesced, through workgroup memory) and applies it to up to ROWS rows of x.
// Layout:
//   binding 0  x    : f32 [x_row0 + M, K] row-major (rows before x_row0 are not read)
//   binding 1  w    : [N, K] row-major, f32 or packed f16, declared with w_at() by the weight
//                     accessor file that ops/matmul.ts prepends (matmul_weights_{f32,f16}.wgsl)
//   binding 2  bias : f32 [N], read only when has_bias != 0 (otherwise any read-only buffer)
//   binding 3  out  : f32 [M, out_stride] row-major; this dispatch writes columns
//                     [out_col0, out_col0 + N) of it (out_stride = N, out_col0 = 0 for a whole W)
//   binding 4  params (uniform, below)
// A W split by rows (GpuTensor.parts) runs one dispatch per part: w is then the part's rows
// [out_col0, out_col0 + N) of the full matrix, N the part's row count, and bias[out_col0 + n] its
// bias. Each output's reduction is unchanged by the split, so results are bitwise the same.
// Work split: one workgroup per (64 columns, ROWS rows) block; thread t owns column n_base + t
// for each of the block's rows. ROWS is a pipeline-override constant (1, 4 or 8), so M = 1 does
// not pay for 8 accumulators. K is staged 32 at a time.
// Grid: g = wid.y * groups_x + wid.x; column block = g % tiles_n, row block = g / tiles_n.
//
// BATCH INVARIANCE: every output is one f32 accumulator, starting at 0, updated as
// acc = fma(x, w, acc) for k = 0, 1, ..., K-1 in order, then bias added last: exactly the
// sequence of matmul_tiled.wgsl. K is never split across threads here, because the tiled kernel
// does not split it either; a row's result must not depend on M or on which kernel ran.

override ROWS: u32 = 8u;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  x_row0: u32,
  tiles_n: u32,
  groups_x: u32,
  has_bias: u32,
  total_groups: u32,
  out_stride: u32,
  out_col0: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const TN: u32 = 64u;
const TK: u32 = 32u;
const MAX_ROWS: u32 = 8u;
// Thread t reads ws[t][kk]: a 33-float stride puts the 64 threads on different banks.
const TKP: u32 = 33u;

var<workgroup> ws: array<f32, 2112>; // [TN][TKP]
var<workgroup> xs: array<f32, 256>;  // [MAX_ROWS][TK]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let g = wid.y * params.groups_x + wid.x;
  // Workgroup-uniform, so returning before the barriers is allowed.
  if (g >= params.total_groups) { return; }
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let n_base = (g % params.tiles_n) * TN;
  let m_base = (g / params.tiles_n) * ROWS;

  var acc: array<f32, MAX_ROWS>;
  for (var r = 0u; r < MAX_ROWS; r++) { acc[r] = 0.0; }

  for (var k0 = 0u; k0 < K; k0 += TK) {
    // W slab [64][32], 32 loads per thread: consecutive threads read consecutive k of a row.
    for (var q = 0u; q < TK; q++) {
      let e = t + q * TN;
      let r = e / TK;
      let kk = e % TK;
      let gn = n_base + r;
      let gk = k0 + kk;
      var wv = 0.0;
      if (gn < N && gk < K) { wv = w_at(gn * K + gk); }
      ws[r * TKP + kk] = wv;
    }
    for (var q = 0u; q < (ROWS * TK + TN - 1u) / TN; q++) {
      let e = t + q * TN;
      let r = e / TK;
      let kk = e % TK;
      let gm = m_base + r;
      let gk = k0 + kk;
      if (r < ROWS) {
        var xv = 0.0;
        if (gm < M && gk < K) { xv = x[(params.x_row0 + gm) * K + gk]; }
        xs[r * TK + kk] = xv;
      }
    }
    workgroupBarrier();

    let kn = min(TK, K - k0);
    for (var kk = 0u; kk < kn; kk++) {
      let wv = ws[t * TKP + kk];
      for (var r = 0u; r < ROWS; r++) {
        acc[r] = fma(xs[r * TK + kk], wv, acc[r]);
      }
    }
    workgroupBarrier();
  }

  let n = n_base + t;
  if (n >= N) { return; }
  for (var r = 0u; r < ROWS; r++) {
    let m = m_base + r;
    if (m >= M) { break; }
    var v = acc[r];
    if (params.has_bias != 0u) { v = v + bias[params.out_col0 + n]; }
    out[m * params.out_stride + params.out_col0 + n] = v;
  }
}
