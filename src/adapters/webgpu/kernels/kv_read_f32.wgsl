// KV pool read accessor, f32 pools (prepended to paged_attention.wgsl by ops/attention.ts).
// Layout: each shard of k_pool, v_pool is [block, token_in_block, n_kv_heads, head_dim], one f32
// per element; shard 0 at bindings 1, 2, shard 1 at 5, 6 (the same buffers when unsharded).

@group(0) @binding(1) var<storage, read> k_pool0: array<f32>;
@group(0) @binding(2) var<storage, read> v_pool0: array<f32>;
@group(0) @binding(5) var<storage, read> k_pool1: array<f32>;
@group(0) @binding(6) var<storage, read> v_pool1: array<f32>;

fn k_at(shard: u32, i: u32) -> f32 {
  if (shard == 0u) { return k_pool0[i]; }
  return k_pool1[i];
}
fn v_at(shard: u32, i: u32) -> f32 {
  if (shard == 0u) { return v_pool0[i]; }
  return v_pool1[i];
}
