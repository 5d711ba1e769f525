// Bias add, in place: x[r, c] += bias[c] (Qwen2's q/k/v projection bias).
// Layout: x f32 [rows, width] row-major; bias f32 [width].
// Uniforms: n = rows * width, width, stride_x.
// Dispatch: one thread per element, ceil(n / 256) workgroups over x (and y past the limit).

struct Params { n: u32, width: u32, stride_x: u32, _p0: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.stride_x + gid.x;
  if (i >= params.n) { return; }
  x[i] = x[i] + bias[i % params.width];
}
