// KV pool store accessor, f16 pools (prepended to kv_write.wgsl by ops/attention.ts).
// Layout: k_pool, v_pool are [slot, n_kv_heads, head_dim] as IEEE halves, two per u32 word,
// little-endian: pair p (elements 2p, 2p + 1) is word p, element 2p in the low half.
// pack2x16float needs no shader-f16 extension; the native-f16 read path (kv_read_f16_native.wgsl)
// reads these same bytes, so every device stores the same bits.

@group(0) @binding(2) var<storage, read_write> k_pool: array<u32>;
@group(0) @binding(3) var<storage, read_write> v_pool: array<u32>;

fn kv_store_pair(p: u32, kv: vec2<f32>, vv: vec2<f32>) {
  k_pool[p] = pack2x16float(kv);
  v_pool[p] = pack2x16float(vv);
}
