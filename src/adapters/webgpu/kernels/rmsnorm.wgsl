// RMSNorm, Hugging Face semantics: y = x * inverseSqrt(mean(x^2) + eps) * w (eps inside the root).
// Layout: input/output f32 [rows, width] row-major; weight f32 [width].
// One workgroup per row; row = wid.y * groups_x + wid.x. Each of the 256 threads sums x^2 over
// columns tid, tid + 256, ... in order, then a fixed-shape tree reduction combines the 256
// partials. The order depends only on width, never on rows or on other rows, so a row's result
// is bitwise identical whatever the batch (batch invariance).
// Entry points: `main` (input -> output, distinct buffers) and `main_inplace` (data is both):
// WebGPU forbids binding one buffer twice when one binding is writable, so the in-place variant
// has its own bindings; both share the body through `row_scale`.
// Uniforms: rows, width, groups_x, eps (f32 bits).
// Qwen3 q/k norm uses this with rows = n_tokens * n_heads and width = head_dim.

struct Params { rows: u32, width: u32, groups_x: u32, eps: f32 }

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// In-place variant: bindings 0 (data), 1 (weight), 2 (uniforms).
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<uniform> params_ip: Params;

var<workgroup> partial: array<f32, WG>;

// Tree-reduce the partials of this row; every thread returns the same total.
fn reduce_sum(tid: u32, value: f32) -> f32 {
  partial[tid] = value;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (tid < s) { partial[tid] = partial[tid] + partial[tid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

fn inv_rms(sum_sq: f32, p: Params) -> f32 {
  return inverseSqrt(sum_sq / f32(p.width) + p.eps);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let row = wid.y * params.groups_x + wid.x;
  // `row` is workgroup-uniform, so this early exit keeps the barriers below in uniform control flow.
  if (row >= params.rows) { return; }
  let base = row * params.width;
  var acc = 0.0;
  for (var c = tid; c < params.width; c += WG) {
    let v = input[base + c];
    acc = acc + v * v;
  }
  let inv = inv_rms(reduce_sum(tid, acc), params);
  for (var c = tid; c < params.width; c += WG) {
    output[base + c] = (input[base + c] * inv) * weight[c];
  }
}

@compute @workgroup_size(256)
fn main_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let row = wid.y * params_ip.groups_x + wid.x;
  if (row >= params_ip.rows) { return; }
  let base = row * params_ip.width;
  var acc = 0.0;
  for (var c = tid; c < params_ip.width; c += WG) {
    let v = data[base + c];
    acc = acc + v * v;
  }
  // reduce_sum ends with a barrier, so every thread has read its inputs before any overwrite;
  // each element is then read and written by the same thread only.
  let inv = inv_rms(reduce_sum(tid, acc), params_ip);
  for (var c = tid; c < params_ip.width; c += WG) {
    data[base + c] = (data[base + c] * inv) * weight[c];
  }
}
