// Repetition, presence and frequency penalties and the logit bias, applied in place to the
// logits before sampling.
// Layout:
//   logits  f32 [n_seqs, vocab] row-major, read_write.
//   params  the sampling records of sample.wgsl (48 bytes each); this kernel reads
//           word 7 repetition f32 (1 = off), word 8 presence f32, word 9 frequency f32.
//   entries Entry [n_entries], 8 words each: row, token, prompt_count, output_count u32, bias f32,
//           3 words padding; one per distinct (row, token) pair, so no two threads touch the
//           same logit.
// Uniforms: vocab, n_entries, groups_x (workgroups along x; the grid may wrap into y).
// Per entry (HF's RepetitionPenaltyLogitsProcessor, then OpenAI's presence/frequency and logit_bias):
//   l = logit; l = (l > 0 ? l / repetition : l * repetition)   (when the token occurs)
//   l = l - frequency * f32(output_count) - (output_count > 0 ? presence : 0)
//   l = l + bias
// ops/penalties.ts mirrors these f32 operations in the same order.

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

struct Entry {
  row: u32,
  token: u32,
  prompt_count: u32,
  output_count: u32,
  bias: f32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

struct Dims { vocab: u32, n_entries: u32, groups_x: u32, _p0: u32 }

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<SampleParams>;
@group(0) @binding(2) var<storage, read> entries: array<Entry>;
@group(0) @binding(3) var<uniform> dims: Dims;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = (wid.y * dims.groups_x + wid.x) * 64u + t;
  if (i >= dims.n_entries) { return; }
  let e = entries[i];
  let p = params[e.row];
  let at = e.row * dims.vocab + e.token;
  var l = logits[at];
  let occurs = e.prompt_count + e.output_count > 0u;
  if (p.repetition != 1.0 && occurs) { l = select(l * p.repetition, l / p.repetition, l > 0.0); }
  let f = p.frequency * f32(e.output_count);
  l = l - f;
  if (e.output_count > 0u) { l = l - p.presence; }
  l = l + e.bias;
  logits[at] = l;
}
