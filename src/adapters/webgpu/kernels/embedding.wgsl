// Token embedding gather: out[t, c] = table[tokenIds[t], c].
// Layout:
//   binding 0  token_ids u32 [n_tokens]
//   binding 1  w         rows [row_start, row_start + part_rows) of the [vocab, hidden] table,
//                        row-major, in any weight format: declared with w_at() by the format's
//                        accessor that weight-formats.ts prepends (f32, f16, bf16, q8, q4 blocks),
//                        so flat element e = row * hidden + c is decoded in registers and a
//                        quantized table is never expanded in memory
//   binding 2  out       f32 [n_tokens, hidden]
//   binding 3  params (uniform, below)
// A table split by rows (GpuTensor.parts) runs one dispatch per part; a thread whose token's row
// lies in another part writes nothing, so every output is written by exactly one dispatch, with
// the same bits as the unsplit gather.
// A token id >= vocab writes a zero row instead of reading out of bounds (ids come from the GPU,
// so the host cannot check them; the host validates ids before upload); of a split table's
// dispatches only the one with zero_oob = 1 writes those zeros.
// Uniforms: n = n_tokens * hidden, hidden, vocab, stride_x, row_start, part_rows, zero_oob.
// Dispatch: one thread per output element, ceil(n / 256) workgroups over x (and y past the limit).

struct Params {
  n: u32,
  hidden: u32,
  vocab: u32,
  _pad: u32,
  stride_x: u32,
  row_start: u32,
  part_rows: u32,
  zero_oob: u32,
}

@group(0) @binding(0) var<storage, read> token_ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.stride_x + gid.x;
  if (i >= params.n) { return; }
  let t = i / params.hidden;
  let c = i - t * params.hidden;
  let id = token_ids[t];
  if (id >= params.vocab) {
    if (params.zero_oob != 0u) { out[i] = 0.0; }
    return;
  }
  // Unsigned wrap makes an id below row_start fail this test too.
  let row = id - params.row_start;
  if (row >= params.part_rows) { return; }
  out[i] = w_at(row * params.hidden + c);
}
