// RoPE of the new tokens' queries and keys, fused with the KV write: one dispatch instead of
// rope(q), rope(k) and kv_write. Same rotation as rope.wgsl (HF "rotate_half", `sincos` from
// rope_sincos.wgsl, prepended by ops/rope-kv.ts) and the same stores as kv_write.wgsl, so the
// results are bitwise those of the three separate kernels.
// Layout:
//   q      f32 [n_tokens, n_heads, head_dim], rotated in place (binding 0)
//   k, v   f32 [n_tokens, n_kv_heads, head_dim] (bindings 1 and 4); k is rotated on its way to
//          the pool and left as it was in its buffer
//   k_pool, v_pool: [slot, n_kv_heads, head_dim], bindings 2 and 3, declared with
//          kv_store_pair() by the KV-dtype accessor (kv_store_{f32,f16}.wgsl, prepended)
//   positions u32 [n_tokens]; inv_freq f32 [half]; slots u32 [n_tokens] (destination slot)
// Work: one invocation per "quad" of a head: rotation pairs (i, i + half) and (i + 1, i + 1 + half)
// for even i < half, so that it writes the two adjacent element pairs (i, i + 1) and
// (i + half, i + half + 1) of the pool whole (a packed-f16 word is never read-modify-written).
// half must be even (head_dim a multiple of 4). Invocations [0, n_q) rotate q heads (only when
// rotate_q != 0: a sharded pool runs one dispatch per shard, and q is rotated by the first);
// [n_q, n_q + n_k) rotate and store k heads, and store v.
// Uniforms: n_tokens, n_heads, n_kv_heads, half, stride_x, pool_slots, slot_base, rotate_q.

struct Params {
  n_tokens: u32,
  n_heads: u32,
  n_kv_heads: u32,
  half: u32,
  stride_x: u32,
  pool_slots: u32,
  slot_base: u32,
  rotate_q: u32,
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> positions: array<u32>;
@group(0) @binding(6) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(7) var<storage, read> slots: array<u32>;
@group(0) @binding(8) var<uniform> params: Params;

// (a, b) rotated by the angle of pair i at position pos: (a cos - b sin, b cos + a sin).
fn rotate(a: f32, b: f32, pos: u32, i: u32) -> vec2<f32> {
  let cs = sincos(f32(pos) * inv_freq[i]);
  return vec2<f32>(a * cs.x - b * cs.y, b * cs.x + a * cs.y);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let g = gid.y * params.stride_x + gid.x;
  let half = params.half;
  let quads = half / 2u;
  let n_q = params.n_tokens * params.n_heads * quads;
  let n_k = params.n_tokens * params.n_kv_heads * quads;
  if (g < n_q) {
    if (params.rotate_q == 0u) { return; }
    let i = 2u * (g % quads);
    let th = g / quads; // token * n_heads + head
    let pos = positions[th / params.n_heads];
    let base = th * 2u * half;
    let r0 = rotate(q[base + i], q[base + i + half], pos, i);
    let r1 = rotate(q[base + i + 1u], q[base + i + 1u + half], pos, i + 1u);
    q[base + i] = r0.x;
    q[base + i + 1u] = r1.x;
    q[base + i + half] = r0.y;
    q[base + i + 1u + half] = r1.y;
    return;
  }
  if (g >= n_q + n_k) { return; }
  let gk = g - n_q;
  let i = 2u * (gk % quads);
  let th = gk / quads; // token * n_kv_heads + kv head
  let token = th / params.n_kv_heads;
  // Another shard's slot, or one past the pool (skipped, as kv_write.wgsl does).
  if (slots[token] < params.slot_base) { return; }
  let slot = slots[token] - params.slot_base;
  if (slot >= params.pool_slots) { return; }
  let pos = positions[token];
  let base = th * 2u * half;
  let r0 = rotate(k[base + i], k[base + i + half], pos, i);
  let r1 = rotate(k[base + i + 1u], k[base + i + 1u + half], pos, i + 1u);
  let row = params.n_kv_heads * 2u * half;
  let dst = slot * row + (th % params.n_kv_heads) * 2u * half + i;
  kv_store_pair(dst >> 1u, vec2<f32>(r0.x, r1.x), vec2<f32>(v[base + i], v[base + i + 1u]));
  kv_store_pair((dst + half) >> 1u, vec2<f32>(r0.y, r1.y), vec2<f32>(v[base + i + half], v[base + i + 1u + half]));
}
