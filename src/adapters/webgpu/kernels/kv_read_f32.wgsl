// KV pool read accessor, f32 pools (prepended to paged_attention.wgsl by ops/attention.ts).
// Layout: k_pool, v_pool are [block, token_in_block, n_kv_heads, head_dim], one f32 per element.

@group(0) @binding(1) var<storage, read> k_pool: array<f32>;
@group(0) @binding(2) var<storage, read> v_pool: array<f32>;

fn k_at(i: u32) -> f32 { return k_pool[i]; }
fn v_at(i: u32) -> f32 { return v_pool[i]; }
