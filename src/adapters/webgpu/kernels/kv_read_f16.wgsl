// KV pool read accessor, packed f16 pools (prepended to paged_attention.wgsl by ops/attention.ts).
// Layout: k_pool, v_pool are [block, token_in_block, n_kv_heads, head_dim] as IEEE halves, two
// per u32 word, little-endian (element i is the low half of word i / 2 when i is even).
// unpack2x16float needs no shader-f16 extension and widens exactly, so attention then runs the
// same f32 arithmetic as with f32 pools.

@group(0) @binding(1) var<storage, read> k_pool: array<u32>;
@group(0) @binding(2) var<storage, read> v_pool: array<u32>;

fn k_at(i: u32) -> f32 { return unpack2x16float(k_pool[i >> 1u])[i & 1u]; }
fn v_at(i: u32) -> f32 { return unpack2x16float(v_pool[i >> 1u])[i & 1u]; }
