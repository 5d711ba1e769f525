// KV write: scatter the new tokens' keys and values into their slots of the paged KV pool.
// Layout:
//   k, v:           f32 [n_tokens, n_kv_heads, head_dim] (keys after RoPE), row = n_kv_heads * head_dim
//   k_pool, v_pool: [block, token_in_block, n_kv_heads, head_dim], i.e. [slot, row] where
//                   slot = block_id * block_tokens + token_in_block; bindings 2 and 3, declared
//                   with kv_store_pair() by the KV-dtype accessor that ops/attention.ts prepends
//                   (kv_store_f32.wgsl: one f32 per element; kv_store_f16.wgsl: packed halves,
//                   two per u32 word, element e the low half of word e / 2 when e is even)
//   slots:          u32 [n_tokens], destination slot of each token
// Uniforms: n_pairs = n_tokens * row / 2, row (even: head_dim is even), pool_slots (slots the
// bound pools hold), stride_x (threads per grid row), slot_base (first global slot of the bound
// shard: a sharded pool is written one shard per dispatch, each skipping the other shards' slots).
// Dispatch: one thread per PAIR of elements (a packed-f16 word is written whole, never
// read-modify-written), ceil(n_pairs / 256) workgroups in x (y used past the x limit).

struct Params { n_pairs: u32, row: u32, pool_slots: u32, stride_x: u32, slot_base: u32, _pad0: u32, _pad1: u32, _pad2: u32 }

@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> slots: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let p = gid.y * params.stride_x + gid.x;
  if (p >= params.n_pairs) { return; }
  let i = 2u * p;
  let token = i / params.row;
  let e = i % params.row;
  // Another shard's slot, or one past the pool (a caller bug: skipping it beats a clamped write
  // that would corrupt the pool's last element, as robust buffer access clamps).
  if (slots[token] < params.slot_base) { return; }
  let slot = slots[token] - params.slot_base;
  if (slot >= params.pool_slots) { return; }
  // row is even, so dst is even and the pair never straddles two slots.
  let dst = slot * params.row + e;
  kv_store_pair(dst >> 1u, vec2<f32>(k[i], k[i + 1u]), vec2<f32>(v[i], v[i + 1u]));
}
