// Residual add, in place: a[i] += b[i] for i < n.
// Layout: a, b are flat f32 arrays of n elements (any logical shape, e.g. [tokens, hidden]).
// Uniforms: n (u32). Dispatch: ceil(n / 256) workgroups in x (y used when x would exceed the limit).

struct Params { n: u32, stride_x: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.stride_x + gid.x;
  if (i >= params.n) { return; }
  a[i] = a[i] + b[i];
}
