// KV write: scatter the new tokens' keys and values into their slots of the paged KV pool.
// Layout:
//   k, v:           f32 [n_tokens, n_kv_heads, head_dim] (keys after RoPE), row = n_kv_heads * head_dim
//   k_pool, v_pool: f32 [block, token_in_block, n_kv_heads, head_dim], i.e. [slot, row] where
//                   slot = block_id * block_tokens + token_in_block
//   slots:          u32 [n_tokens], destination slot of each token
// Uniforms: n = n_tokens * row, row, pool_slots (slots the pools hold), stride_x (threads per grid row).
// Dispatch: one thread per element, ceil(n / 256) workgroups in x (y used past the x limit).

struct Params { n: u32, row: u32, pool_slots: u32, stride_x: u32 }

@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> k_pool: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_pool: array<f32>;
@group(0) @binding(4) var<storage, read> slots: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * params.stride_x + gid.x;
  if (i >= params.n) { return; }
  let token = i / params.row;
  let e = i % params.row;
  let slot = slots[token];
  // A slot past the pool is a caller bug; skipping it beats a clamped write that would corrupt
  // the pool's last element (robust buffer access clamps out-of-range writes).
  if (slot >= params.pool_slots) { return; }
  let dst = slot * params.row + e;
  k_pool[dst] = k[i];
  v_pool[dst] = v[i];
}
