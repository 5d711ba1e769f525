// Tiled matmul for prefill (many rows): out[m, n] = sum_k x[x_row0 + m, k] * W[n, k] (+ bias[n]).
// Layout:
//   binding 0  x    : f32 [x_row0 + M, K] row-major (rows before x_row0 are not read)
//   binding 1  w    : [N, K] row-major, f32 or packed f16, declared with w_at() by the weight
//                     accessor file that ops/matmul.ts prepends (matmul_weights_{f32,f16}.wgsl)
//   binding 2  bias : f32 [N], read only when has_bias != 0 (otherwise any read-only buffer)
//   binding 3  out  : f32 [M, out_stride] row-major; this dispatch writes columns
//                     [out_col0, out_col0 + N) of it (out_stride = N, out_col0 = 0 for a whole W)
//   binding 4  params (uniform, below)
// With accumulate != 0 the result is added to what out holds (out = out + (sum + bias)): the
// residual add after o_proj and down_proj, bitwise the separate add kernel's x + y.
// A W split by rows (GpuTensor.parts) runs one dispatch per part: w is then the part's rows
// [out_col0, out_col0 + N) of the full matrix, N the part's row count, and bias[out_col0 + n] its
// bias. Each output's reduction is unchanged by the split, so results are bitwise the same.
// Work split: one workgroup per 64 (M) x 64 (N) output tile, 16 x 16 threads, each thread owning
// the 4 x 4 outputs (m_base + ty + 16 i, n_base + tx + 16 j), so that neighbouring threads write
// neighbouring columns. K is staged through workgroup memory 16 at a time.
// Grid: workgroups are numbered g = wid.y * groups_x + wid.x (y is used when the tile count passes
// maxComputeWorkgroupsPerDimension); tile_n = g % tiles_n, tile_m = g / tiles_n.
//
// BATCH INVARIANCE: the reduction order of matmul_vec.wgsl, exactly: K in chunks of KC = 64
// (four TK tiles); within a chunk acc = fma(x, w, acc) for k in order from 0, the chunk sums added
// in chunk order (total = c0, total = total + c1, ...), the bias last (the staging loop never
// visits k >= K). So a row's result does not depend on M or on which kernel ran. Do not change
// one kernel's reduction without the other.

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
  // 1: out += result (the residual add fused into o_proj and down_proj), 0: out = result.
  accumulate: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
const KC: u32 = 64u;
const THREADS: u32 = 256u;
// One float of padding per row: threads read column kk of 16 different rows at once, and a
// 17-float stride spreads those reads over different banks.
const TKP: u32 = 17u;

var<workgroup> xs: array<f32, 1088>; // [TM][TKP]
var<workgroup> ws: array<f32, 1088>; // [TN][TKP]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let g = wid.y * params.groups_x + wid.x;
  // Workgroup-uniform, so returning before the barriers is allowed.
  if (g >= params.total_groups) { return; }
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let n_base = (g % params.tiles_n) * TN;
  let m_base = (g / params.tiles_n) * TM;
  let tx = lid.x;
  let ty = lid.y;

  var acc: array<f32, 16>;
  var total: array<f32, 16>;
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; total[i] = 0.0; }

  for (var k0 = 0u; k0 < K; k0 += TK) {
    // Stage x[m_base .. +64, k0 .. +16] and W[n_base .. +64, k0 .. +16] (one loop for both since
    // TM == TN); consecutive threads read consecutive k of a row. Out-of-range entries are zero
    // but never reach an accumulator.
    for (var q = 0u; q < (TM * TK) / THREADS; q++) {
      let e = li + q * THREADS;
      let r = e / TK;
      let kk = e % TK;
      let gk = k0 + kk;
      var xv = 0.0;
      let gm = m_base + r;
      if (gm < M && gk < K) { xv = x[(params.x_row0 + gm) * K + gk]; }
      xs[r * TKP + kk] = xv;
      var wv = 0.0;
      let gn = n_base + r;
      if (gn < N && gk < K) { wv = w_at(gn * K + gk); }
      ws[r * TKP + kk] = wv;
    }
    workgroupBarrier();

    let kn = min(TK, K - k0);
    for (var kk = 0u; kk < kn; kk++) {
      var xr: array<f32, 4>;
      var wr: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { xr[i] = xs[(ty + 16u * i) * TKP + kk]; }
      for (var j = 0u; j < 4u; j++) { wr[j] = ws[(tx + 16u * j) * TKP + kk]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = fma(xr[i], wr[j], acc[i * 4u + j]);
        }
      }
    }
    // End of a chunk (or of K): fold its sum into the total, in chunk order.
    if ((k0 + TK) % KC == 0u || k0 + TK >= K) {
      let first = k0 < KC;
      for (var i = 0u; i < 16u; i++) {
        total[i] = select(total[i] + acc[i], acc[i], first);
        acc[i] = 0.0;
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m_base + ty + 16u * i;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n_base + tx + 16u * j;
      if (n >= N) { continue; }
      var v = total[i * 4u + j];
      if (params.has_bias != 0u) { v = v + bias[params.out_col0 + n]; }
      let at = m * params.out_stride + params.out_col0 + n;
      if (params.accumulate != 0u) { v = out[at] + v; }
      out[at] = v;
    }
  }
}
