// KV pool read accessor, packed f16 pools (prepended to paged_attention.wgsl by ops/attention.ts).
// Layout: each shard of k_pool, v_pool is [block, token_in_block, n_kv_heads, head_dim] as IEEE
// halves, two per u32 word, little-endian (element i is the low half of word i / 2 when i is
// even); shard 0 at bindings 1, 2, shard 1 at 5, 6 (the same buffers when unsharded).
// unpack2x16float needs no shader-f16 extension and widens exactly, so attention then runs the
// same f32 arithmetic as with f32 pools.

@group(0) @binding(1) var<storage, read> k_pool0: array<u32>;
@group(0) @binding(2) var<storage, read> v_pool0: array<u32>;
@group(0) @binding(5) var<storage, read> k_pool1: array<u32>;
@group(0) @binding(6) var<storage, read> v_pool1: array<u32>;

fn k_at(shard: u32, i: u32) -> f32 {
  if (shard == 0u) { return unpack2x16float(k_pool0[i >> 1u])[i & 1u]; }
  return unpack2x16float(k_pool1[i >> 1u])[i & 1u];
}
fn v_at(shard: u32, i: u32) -> f32 {
  if (shard == 0u) { return unpack2x16float(v_pool0[i >> 1u])[i & 1u]; }
  return unpack2x16float(v_pool1[i >> 1u])[i & 1u];
}
