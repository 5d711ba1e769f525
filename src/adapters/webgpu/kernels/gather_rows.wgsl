// Row gather: output[o, c] = input[rows[o], c]. Used to keep only the last position of each
// sequence before the lm_head, so logits are computed for those rows alone.
// Layout: input f32 [n_rows_in, width]; rows u32 [n_out]; output f32 [n_out, width].
// A row index >= n_rows_in writes a zero row rather than reading out of bounds (indices live on
// the GPU, so the host cannot check them).
// Uniforms: n = n_out * width, width, n_rows_in, stride_x.
// Dispatch: one thread per output element, ceil(n / 256) workgroups over x (and y past the limit).

struct Params { n: u32, width: u32, n_rows_in: u32, stride_x: u32 }

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.stride_x + gid.x;
  if (i >= params.n) { return; }
  let o = i / params.width;
  let c = i - o * params.width;
  let r = rows[o];
  if (r >= params.n_rows_in) {
    output[i] = 0.0;
    return;
  }
  output[i] = input[r * params.width + c];
}
