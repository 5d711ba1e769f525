// Generic four-element weight read for the formats whose accessor defines only w_at (the block
// layouts): appended after such an accessor by weight-formats.ts. i is a multiple of 4.
fn w_at4(i: u32) -> vec4<f32> {
  return vec4<f32>(w_at(i), w_at(i + 1u), w_at(i + 2u), w_at(i + 3u));
}
