// KV pool store accessor, f32 pools (prepended to kv_write.wgsl by ops/attention.ts).
// Layout: k_pool, v_pool are [slot, n_kv_heads, head_dim] with one f32 per element; pair p is
// elements 2p and 2p + 1.

@group(0) @binding(2) var<storage, read_write> k_pool: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_pool: array<f32>;

fn kv_store_pair(p: u32, kv: vec2<f32>, vv: vec2<f32>) {
  k_pool[2u * p] = kv.x;
  k_pool[2u * p + 1u] = kv.y;
  v_pool[2u * p] = vv.x;
  v_pool[2u * p + 1u] = vv.y;
}
