// Byte readers shared by the block-format weight accessors (q8, q4 and the GGUF block layouts),
// prepended before each of them by weight-formats.ts. Layout: w is the matrix's blocks back to
// back, read as array<u32> little-endian; an accessor's w_at decodes one element from them.
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn w_byte(offset: u32) -> u32 {
  return (w[offset >> 2u] >> ((offset & 3u) * 8u)) & 0xffu;
}

// f16 at an even byte offset.
fn w_half(offset: u32) -> f32 {
  let word = w[offset >> 2u];
  return unpack2x16float(select(word, word >> 16u, (offset & 2u) != 0u)).x;
}
