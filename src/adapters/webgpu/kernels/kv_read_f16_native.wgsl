// KV pool read accessor, f16 pools read with shader-f16 loads (used only where the device has
// the feature; prepended to paged_attention.wgsl by ops/attention.ts).
// Layout: the same bytes as kv_read_f16.wgsl (shard 0 at bindings 1, 2, shard 1 at 5, 6), read
// natively as array<f16>. f16 -> f32 widening is exact, so results are bitwise those of the
// unpack2x16float variant.
enable f16;

@group(0) @binding(1) var<storage, read> k_pool0: array<f16>;
@group(0) @binding(2) var<storage, read> v_pool0: array<f16>;
@group(0) @binding(5) var<storage, read> k_pool1: array<f16>;
@group(0) @binding(6) var<storage, read> v_pool1: array<f16>;

fn k_at(shard: u32, i: u32) -> f32 {
  if (shard == 0u) { return f32(k_pool0[i]); }
  return f32(k_pool1[i]);
}
fn v_at(shard: u32, i: u32) -> f32 {
  if (shard == 0u) { return f32(v_pool0[i]); }
  return f32(v_pool1[i]);
}
