// Next-token sampling, one workgroup (256 threads) per sequence; only token ids leave the GPU.
// Layout:
//   logits f32 [n_seqs, vocab] row-major.
//   params: one 48-byte record per sequence (12 x 4-byte words, built by packSampleParams):
//     word 0  inv_temperature f32   1 / temperature rounded to f32; 0 means greedy
//     word 1  top_k           u32   0 = off; 1 = greedy
//     word 2  top_p           f32   in (0, 1]; 1 = off
//     word 3  seed            u32
//     word 4  step            u32   the RNG counter: same (seed, step) -> same draw
//     word 5  min_p           f32   in [0, 1]; 0 = off
//     word 6  log_min_p       f32   ln(min_p) rounded to f32 on the host
//     words 7..9              repetition, presence, frequency penalties (read by penalize.wgsl,
//                             which has already applied them to the logits)
//     words 10..11            zero (reserved)
//   out u32 [n_seqs] token ids.
// Uniforms: vocab, n_seqs, chunk = ceil(vocab / 256).
//
// Algorithm (mirrored bit for bit, exp aside, by sampleCpu in ops/sampling.ts):
//  greedy: argmax of the raw logits, ties to the lowest index.
//  else:   z = logit * inv_temperature (one rounded f32 product). Values are compared through
//          an order-preserving u32 key (key_of), so thresholds are exact and ties are kept.
//   1. max_key = max key; zmax = its float. w(z) = 1 when z == zmax, 0 when z - zmax < -87
//      (before exp underflows to subnormals, which GPUs may flush), else exp(z - zmax).
//   2. top-k: threshold = the k-th largest key, by 4 passes of 8-bit radix select with
//      workgroup atomics (exact, no sort). Tokens with key >= threshold stay (ties stay, as HF).
//   3. top-p: S = sum of w over kept tokens; binary search over keys in [threshold, max_key] for
//      the largest T with mass(key >= T) >= top_p * S: the smallest top set reaching top_p.
//   3b. min-p (after top-p, as HF orders them): threshold = max(threshold, key(zmax + log_min_p)),
//      i.e. keep p >= min_p * p_max. Every filter is a key threshold, so they compose by max.
//      Each mass is a strided per-thread f32 sum then a fixed tree, so it is deterministic.
//   4. draw: u = (pcg(seed ^ pcg(step + 0x9e3779b9)) >> 8) / 2^24. Thread t sums w over the
//      contiguous chunk [t * chunk, (t + 1) * chunk); thread 0 scans the 256 chunk sums in
//      order, takes the first chunk whose running sum passes u * total, and walks it.
// No step depends on other sequences in the batch, so a draw depends only on its row and record.
// Logits must not be NaN (a NaN row yields an arbitrary in-range id).

struct SampleParams {
  inv_temperature: f32,
  top_k: u32,
  top_p: f32,
  seed: u32,
  step: u32,
  min_p: f32,
  log_min_p: f32,
  repetition: f32,
  presence: f32,
  frequency: f32,
  _r0: u32,
  _r1: u32,
}

struct Dims { vocab: u32, n_seqs: u32, chunk: u32, _p0: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<SampleParams>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> dims: Dims;

// 256 threads and 256 radix bins: each thread clears one bin.
const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;
const EXP_CUTOFF: f32 = -87.0;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> hist: array<atomic<u32>, WG>;
var<workgroup> radix: vec2<u32>;   // (prefix so far, rank still to find)
var<workgroup> bounds: vec2<u32>;  // binary search (lo, hi), inclusive

fn key_of(f: f32) -> u32 {
  let b = bitcast<u32>(f);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn float_of(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

fn weight(z: f32, zmax: f32) -> f32 {
  if (z == zmax) { return 1.0; }
  let d = z - zmax;
  if (!(d >= EXP_CUTOFF)) { return 0.0; }
  return exp(d);
}

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn uniform01(seed: u32, step: u32) -> f32 {
  let h = pcg(seed ^ pcg(step + 0x9e3779b9u));
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

fn reduce_sum(tid: u32, v: f32) -> f32 {
  red_f[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_f[tid] = red_f[tid] + red_f[tid + s]; }
    workgroupBarrier();
  }
  let total = red_f[0];
  workgroupBarrier();
  return total;
}

fn reduce_max_u(tid: u32, v: u32) -> u32 {
  red_u[tid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { red_u[tid] = max(red_u[tid], red_u[tid + s]); }
    workgroupBarrier();
  }
  let m = red_u[0];
  workgroupBarrier();
  return m;
}

// Largest logit, lowest index on ties (the CPU argmax). Result valid in thread 0.
fn argmax(base: u32, vocab: u32, tid: u32) -> u32 {
  var bv = 0.0;
  var bi = NONE;
  if (tid < vocab) {
    bv = logits[base + tid];
    bi = tid;
  }
  for (var i = tid + WG; i < vocab; i += WG) {
    let v = logits[base + i];
    if (v > bv) { bv = v; bi = i; }
  }
  red_f[tid] = bv;
  red_u[tid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) {
      let oi = red_u[tid + s];
      let ov = red_f[tid + s];
      let mi = red_u[tid];
      let mv = red_f[tid];
      if (oi != NONE && (mi == NONE || ov > mv || (ov == mv && oi < mi))) {
        red_f[tid] = ov;
        red_u[tid] = oi;
      }
    }
    workgroupBarrier();
  }
  return red_u[0];
}

// Key of the k-th largest z (1-based k < vocab): 8 bits a pass, from the top byte down.
fn kth_largest_key(base: u32, vocab: u32, inv_t: f32, k: u32, tid: u32) -> u32 {
  if (tid == 0u) { radix = vec2<u32>(0u, k); }
  for (var r = 0u; r < 4u; r++) {
    let shift = 24u - 8u * r;
    let mask = select(0u, 0xffffffffu << (shift + 8u), r > 0u);
    atomicStore(&hist[tid], 0u);
    workgroupBarrier();
    let prefix = radix.x;
    for (var i = tid; i < vocab; i += WG) {
      let key = key_of(logits[base + i] * inv_t);
      if ((key & mask) == prefix) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (tid == 0u) {
      var rank = radix.y;
      var bin = 255u;
      loop {
        let c = atomicLoad(&hist[bin]);
        if (rank <= c || bin == 0u) { break; }
        rank = rank - c;
        bin = bin - 1u;
      }
      radix = vec2<u32>(prefix | (bin << shift), rank);
    }
    workgroupBarrier();
  }
  return radix.x;
}

// Sum of w over tokens whose key is >= threshold.
fn mass_above(base: u32, vocab: u32, inv_t: f32, zmax: f32, threshold: u32, tid: u32) -> f32 {
  var acc = 0.0;
  for (var i = tid; i < vocab; i += WG) {
    let z = logits[base + i] * inv_t;
    if (key_of(z) >= threshold) { acc = acc + weight(z, zmax); }
  }
  return reduce_sum(tid, acc);
}

// Largest key T in [lo, hi] with mass_above(T) >= top_p * mass_above(lo).
fn top_p_threshold(base: u32, vocab: u32, inv_t: f32, zmax: f32, lo: u32, hi: u32, top_p: f32, tid: u32) -> u32 {
  let goal = top_p * mass_above(base, vocab, inv_t, zmax, lo, tid);
  if (tid == 0u) { bounds = vec2<u32>(lo, hi); }
  loop {
    let b = workgroupUniformLoad(&bounds);
    if (b.x >= b.y) { break; }
    let gap = b.y - b.x;
    let mid = b.x + (gap >> 1u) + (gap & 1u);
    let m = mass_above(base, vocab, inv_t, zmax, mid, tid);
    if (tid == 0u) {
      if (m >= goal) { bounds.x = mid; } else { bounds.y = mid - 1u; }
    }
  }
  return workgroupUniformLoad(&bounds).x;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let seq = wid.x;
  if (seq >= dims.n_seqs) { return; }
  let p = params[seq];
  let vocab = dims.vocab;
  let base = seq * vocab;
  if (p.inv_temperature == 0.0 || p.top_k == 1u) {
    let best = argmax(base, vocab, tid);
    if (tid == 0u) { out[seq] = best; }
    return;
  }
  let inv_t = p.inv_temperature;

  var mk = 0u;
  for (var i = tid; i < vocab; i += WG) { mk = max(mk, key_of(logits[base + i] * inv_t)); }
  let max_key = reduce_max_u(tid, mk);
  let zmax = float_of(max_key);

  var threshold = 0u;
  if (p.top_k != 0u && p.top_k < vocab) { threshold = kth_largest_key(base, vocab, inv_t, p.top_k, tid); }
  if (p.top_p < 1.0) { threshold = top_p_threshold(base, vocab, inv_t, zmax, threshold, max_key, p.top_p, tid); }
  if (p.min_p > 0.0) { threshold = max(threshold, key_of(zmax + p.log_min_p)); }

  let start = tid * dims.chunk;
  let end = min(start + dims.chunk, vocab);
  var s = 0.0;
  for (var i = start; i < end; i++) {
    let z = logits[base + i] * inv_t;
    if (key_of(z) >= threshold) { s = s + weight(z, zmax); }
  }
  red_f[tid] = s;
  workgroupBarrier();
  if (tid != 0u) { return; }

  var total = 0.0;
  for (var t = 0u; t < WG; t++) { total = total + red_f[t]; }
  let goal = uniform01(p.seed, p.step) * total;
  // First chunk whose running sum passes the goal; else (rounding) the last non-empty chunk.
  var chosen = NONE;
  var before = 0.0;
  var last_nonempty = 0u;
  var before_last = 0.0;
  var run = 0.0;
  for (var t = 0u; t < WG; t++) {
    let next = run + red_f[t];
    if (red_f[t] > 0.0) {
      last_nonempty = t;
      before_last = run;
    }
    if (chosen == NONE && next > goal) {
      chosen = t;
      before = run;
    }
    run = next;
  }
  if (chosen == NONE) {
    chosen = last_nonempty;
    before = before_last;
  }
  // Walk the chunk: first kept token whose running weight passes the rest of the goal, else the
  // last token of the chunk with a non-zero weight.
  let rest = goal - before;
  var pick = NONE;
  var last = NONE;
  var acc = 0.0;
  let c0 = chosen * dims.chunk;
  let c1 = min(c0 + dims.chunk, vocab);
  for (var i = c0; i < c1; i++) {
    let z = logits[base + i] * inv_t;
    if (key_of(z) < threshold) { continue; }
    let w = weight(z, zmax);
    if (w > 0.0) { last = i; }
    acc = acc + w;
    if (w > 0.0 && acc > rest) {
      pick = i;
      break;
    }
  }
  if (pick == NONE) { pick = select(last, 0u, last == NONE); }
  out[seq] = pick;
}
