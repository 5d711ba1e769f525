// SwiGLU gate of the Llama MLP: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
// Layout: gate, up, out f32 [n] (any logical shape, e.g. [tokens, intermediate]).
// silu is evaluated as g * sigmoid(g) with e = exp(-|g|) <= 1, so exp never overflows for large
// |g| (WGSL leaves overflowing exp unspecified): sigmoid = 1 / (1 + e) for g >= 0, e / (1 + e)
// otherwise. out may alias neither input (it is a distinct writable binding).
// Uniforms: n, stride_x. Dispatch: ceil(n / 256) workgroups over x (and y past the limit).

struct Params { n: u32, stride_x: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.stride_x + gid.x;
  if (i >= params.n) { return; }
  let g = gate[i];
  let e = exp(-abs(g));
  let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), g >= 0.0);
  out[i] = (g * sig) * up[i];
}
