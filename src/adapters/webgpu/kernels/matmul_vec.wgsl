// Matvec / small-batch matmul for decode (few rows): out[m, n] = sum_k x[x_row0 + m, k] * W[n, k]
// (+ bias[n]). Decode is bound by reading W: each thread reads one row of W once and applies it to
// up to ROWS rows of x, so a step reads the weights once for the whole batch.
// Layout:
//   binding 0  x    : f32 [x_row0 + M, K] row-major (rows before x_row0 are not read)
//   binding 1  w    : [N, K] row-major in the format of the accessor file that ops/matmul.ts
//                     prepends (matmul_weights_*.wgsl, which declares w and w_at)
//   binding 2  bias : f32 [N], read only when has_bias != 0 (otherwise any read-only buffer)
//   binding 3  out  : f32 [M, out_stride] row-major; this dispatch writes columns
//                     [out_col0, out_col0 + N) of it (out_stride = N, out_col0 = 0 for a whole W)
//   binding 4  params (uniform, below)
// With accumulate != 0 the result is added to what out holds (out = out + (sum + bias)): the
// residual add after o_proj and down_proj, bitwise the separate add kernel's x + y.
// A W split by rows (GpuTensor.parts) runs one dispatch per part: w is then the part's rows
// [out_col0, out_col0 + N) of the full matrix, N the part's row count, and bias[out_col0 + n] its
// bias. Each output's reduction is unchanged by the split, so results are bitwise the same.
// Work split: one workgroup per (64 columns, ROWS rows) block; thread t owns column n_base + t
// for each of the block's rows and walks K itself, four k at a time (w_at4: one vector load of
// packed weights). There is no workgroup memory and no barrier: SwiftShader (the CPU adapter)
// runs a barrier as a switch of all 64 invocations, which made the staged version of this kernel
// 4-7x slower there, and a GPU gets the same reuse of the x rows from its caches. ROWS is a
// pipeline-override constant (1, 4 or 8): one row keeps a scalar accumulator, more rows keep
// their accumulators in vec4 lanes (rows m_base + 0..3 and + 4..7), never in an indexed array,
// which SwiftShader would spill to memory. Lanes of rows past M read a valid row (clamped) and
// are never written out.
// Grid: g = wid.y * groups_x + wid.x; column block = g % tiles_n, row block = g / tiles_n.
//
// BATCH INVARIANCE (the reduction order, shared verbatim with matmul_tiled.wgsl): K is cut into
// chunks of KC = 64 consecutive k. Within a chunk one f32 accumulator starts at 0 and is updated
// as acc = fma(x, w, acc) for k in order; the chunk sums are then added in chunk order
// (total = c0, total = total + c1, ...); the bias is added last. The order depends on K only,
// never on M or on which kernel ran, so a row's result is bitwise the same alone and in a batch.
// (Fixed chunks let a split-K kernel compute chunks in parallel and still give the same bits.)

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
  // 1: out += result (the residual add fused into o_proj and down_proj), 0: out = result.
  accumulate: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const TN: u32 = 64u;
const KC: u32 = 64u;

fn x_at(m: u32, k: u32) -> f32 {
  return x[(params.x_row0 + m) * params.K + k];
}

// x[m0 + 0..3, k] as the lanes of a vec4; rows at or past m_last read row m_last instead.
fn x4(m0: u32, m_last: u32, k: u32) -> vec4<f32> {
  return vec4<f32>(x_at(min(m0, m_last), k), x_at(min(m0 + 1u, m_last), k), x_at(min(m0 + 2u, m_last), k), x_at(min(m0 + 3u, m_last), k));
}

// One chunk [k0, k_end) of one row: sequential fma from 0.
fn chunk1(m: u32, w_row: u32, k0: u32, k_end: u32) -> f32 {
  var acc = 0.0;
  var k = k0;
  for (; k + 4u <= k_end; k += 4u) {
    let wv = w_at4(w_row + k);
    acc = fma(x_at(m, k), wv.x, acc);
    acc = fma(x_at(m, k + 1u), wv.y, acc);
    acc = fma(x_at(m, k + 2u), wv.z, acc);
    acc = fma(x_at(m, k + 3u), wv.w, acc);
  }
  for (; k < k_end; k++) { acc = fma(x_at(m, k), w_at(w_row + k), acc); }
  return acc;
}

// The same chunk for rows m0 + 0..3 (lanes of .lo) and, when `hi`, rows m0 + 4..7 (.hi): each
// lane is the sequential fma of its row; each weight vector is read once for all eight rows.
struct Acc8 { lo: vec4<f32>, hi: vec4<f32> }

fn chunk8(m0: u32, m_last: u32, hi: bool, w_row: u32, k0: u32, k_end: u32) -> Acc8 {
  var a = Acc8(vec4<f32>(0.0), vec4<f32>(0.0));
  var k = k0;
  for (; k + 4u <= k_end; k += 4u) {
    let wv = w_at4(w_row + k);
    for (var j = 0u; j < 4u; j++) {
      let w = vec4<f32>(wv[j]);
      a.lo = fma(x4(m0, m_last, k + j), w, a.lo);
      if (hi) { a.hi = fma(x4(m0 + 4u, m_last, k + j), w, a.hi); }
    }
  }
  for (; k < k_end; k++) {
    let w = vec4<f32>(w_at(w_row + k));
    a.lo = fma(x4(m0, m_last, k), w, a.lo);
    if (hi) { a.hi = fma(x4(m0 + 4u, m_last, k), w, a.hi); }
  }
  return a;
}

fn store(m: u32, n: u32, value: f32) {
  var v = value;
  if (params.has_bias != 0u) { v = v + bias[params.out_col0 + n]; }
  let at = m * params.out_stride + params.out_col0 + n;
  if (params.accumulate != 0u) { v = out[at] + v; }
  out[at] = v;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let g = wid.y * params.groups_x + wid.x;
  if (g >= params.total_groups) { return; }
  let K = params.K;
  let n = (g % params.tiles_n) * TN + t;
  let m_base = (g / params.tiles_n) * ROWS;
  if (n >= params.N) { return; }
  let w_row = n * K;
  let m_last = min(m_base + ROWS, params.M) - 1u;

  if (ROWS == 1u) {
    var total = 0.0;
    for (var k0 = 0u; k0 < K; k0 += KC) {
      let c = chunk1(m_base, w_row, k0, min(k0 + KC, K));
      total = select(total + c, c, k0 == 0u);
    }
    store(m_base, n, total);
    return;
  }
  let has_hi = ROWS == 8u && m_base + 4u <= m_last;
  var lo = vec4<f32>(0.0);
  var hi = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += KC) {
    let c = chunk8(m_base, m_last, has_hi, w_row, k0, min(k0 + KC, K));
    lo = select(lo + c.lo, c.lo, k0 == 0u);
    hi = select(hi + c.hi, c.hi, k0 == 0u);
  }
  for (var r = 0u; r < 4u; r++) {
    if (m_base + r <= m_last) { store(m_base + r, n, lo[r]); }
    if (ROWS == 8u && m_base + 4u + r <= m_last) { store(m_base + 4u + r, n, hi[r]); }
  }
}
