// Paged causal grouped-query attention with an online softmax, for decode and chunked prefill
// alike: query token t (sequence s, absolute position p) attends to keys at positions 0..p of s,
// read through s's block table.
//
// Layout:
//   q, out:         f32 [n_tokens, n_heads, head_dim] (q after RoPE)
//   KV pool:        per side (K, V) up to 2 shards, each [block, token_in_block, n_kv_heads,
//                   head_dim] of blocks_per_shard blocks, f32 or packed f16: bindings 1, 2 (shard
//                   0) and 5, 6 (shard 1), declared with k_at(shard, i) / v_at(shard, i) (which
//                   widen to f32) by the KV-dtype accessor that ops/attention.ts prepends
//                   (kv_read_{f32,f16,f16_native}.wgsl). Global block b is block
//                   b % blocks_per_shard of shard b / blocks_per_shard.
//   step_meta:      u32, four tables back to back (one binding, so that two shards per side fit
//                   the 8 storage buffers every device has):
//     [0, n_tokens)            token_seq: sequence of each query token
//     [pos_at, +n_tokens)      token_pos: absolute position of each query token
//     [offsets_at, +n_seqs)    table_offsets: start of each sequence's table in block_tables
//     [tables_at, ...)         block_tables: all sequences' block tables concatenated
// Key position `pos` of sequence s lives in global block
//   block_tables[table_offsets[s] + pos / block_tokens], token pos % block_tokens.
// Query head h reads kv head h / group_size (group_size = n_heads / n_kv_heads).
//
// Dispatch: x = ceil(n_tokens / tokens_per_group), y = n_kv_heads * head_chunks. A workgroup
// serves tokens_per_group consecutive tokens x heads_per_group heads of one kv head
// (tokens_per_group * heads_per_group <= SLOTS). Its tokens are grouped by sequence ("segments");
// for each segment the K/V tiles are loaded once into workgroup memory and shared by every query
// of that sequence (the prefill win; GQA heads share them in decode too).
//
// Determinism (the reason this is ONE kernel): a query's result depends only on its own q and on
// the keys at positions 0..p. Keys are visited in position order in tiles of TILE positions
// aligned to position 0, independent of block_tokens and of where the blocks sit; each query is
// owned by LANES threads whose split of work is fixed (lane j % LANES scores key j, lane d % LANES
// accumulates dim d), and every lane runs the same sequence of f32 operations for that query no
// matter how many other tokens, heads or sequences share the workgroup or the dispatch. So greedy
// decoding is bitwise the same alone or batched, paged or dense, as decode or inside a chunk.
// TILE and LANES are part of the numerics: changing them changes results (not correctness).
//
// main_serial: the same attention with no workgroup memory and no barrier, for CPU adapters
// (SwiftShader runs each barrier as a switch of all 128 invocations; there this entry point is
// several times faster). One invocation owns one (token, head) query and walks its keys in the
// same tiles of TILE positions with the same online softmax, all its dims itself. Its numerics
// differ from main's (dot products are not split by lane) but are just as independent of the
// batch: a device uses one entry point for its whole life (ops/attention.ts picks it), so greedy
// decoding stays bitwise the same alone and batched.

const TILE: u32 = 16u;
const LANES: u32 = 8u;
const SLOTS: u32 = 16u;
const WG: u32 = 128u; // SLOTS * LANES
const MAX_HEAD_DIM: u32 = 128u;
const DIMS_PER_LANE: u32 = 16u; // MAX_HEAD_DIM / LANES

struct Params {
  n_tokens: u32,
  n_seqs: u32,
  n_heads: u32,
  n_kv_heads: u32,
  head_dim: u32,
  block_tokens: u32,
  tokens_per_group: u32,
  heads_per_group: u32,
  group_size: u32,
  head_chunks: u32,
  scale: f32,
  blocks_per_shard: u32,
  pos_at: u32,
  tables_at: u32,
  offsets_at: u32,
  // main_serial only: workgroups along x (its 1-D grid spills into y).
  groups_x: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> step_meta: array<u32>;
@group(0) @binding(7) var<uniform> params: Params;

fn token_seq(t: u32) -> u32 { return step_meta[t]; }
fn token_pos(t: u32) -> u32 { return step_meta[params.pos_at + t]; }
fn table_offset(s: u32) -> u32 { return step_meta[params.offsets_at + s]; }
fn block_table(i: u32) -> u32 { return step_meta[params.tables_at + i]; }

// 8 + 8 + 8 + 1 KiB: fits the 32 KiB that desktop adapters and SwiftShader give (checked in TS).
var<workgroup> k_tile: array<f32, TILE * MAX_HEAD_DIM>;
var<workgroup> v_tile: array<f32, TILE * MAX_HEAD_DIM>;
var<workgroup> q_tile: array<f32, SLOTS * MAX_HEAD_DIM>;
var<workgroup> scores: array<f32, SLOTS * TILE>;
var<workgroup> tok_seq: array<u32, SLOTS>;
var<workgroup> tok_pos: array<u32, SLOTS>;
var<workgroup> tok_done: array<u32, SLOTS>;
var<workgroup> seg_found: u32;
var<workgroup> seg_seq: u32;
var<workgroup> seg_last: u32;

// Position pos of sequence table table_base: the shard and the element index of (pos, kvh, 0).
fn kv_base(table_base: u32, pos: u32, kvh: u32) -> vec2<u32> {
  let block = block_table(table_base + pos / params.block_tokens);
  let shard = block / params.blocks_per_shard;
  let slot_id = (block - shard * params.blocks_per_shard) * params.block_tokens + pos % params.block_tokens;
  return vec2<u32>(shard, (slot_id * params.n_kv_heads + kvh) * params.head_dim);
}

// Online softmax: the running max after a tile whose max is tile_max, and the factor that
// rescales the state kept so far. The first tile (start 0) starts the state; no -inf needed
// (WGSL may not honour infinities). Returns (m_new, corr).
fn rescale(m: f32, tile_max: f32, start: u32) -> vec2<f32> {
  if (start == 0u) { return vec2<f32>(tile_max, 0.0); }
  let m_new = max(m, tile_max);
  return vec2<f32>(m_new, exp(m - m_new));
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let hd = params.head_dim;
  let tb = params.tokens_per_group;
  let hb = params.heads_per_group;
  let t0 = wid.x * tb;
  let kvh = wid.y / params.head_chunks;
  let chunk = wid.y % params.head_chunks;

  // This thread's query: slot -> (token, head); lane -> its share of the query's work.
  let slot = lid / LANES;
  let lane = lid % LANES;
  let t_local = slot / hb;
  let head_in_group = chunk * hb + slot % hb;
  let token = t0 + t_local;
  let valid = t_local < tb && token < params.n_tokens && head_in_group < params.group_size;
  let head = kvh * params.group_size + head_in_group;
  let row = (token * params.n_heads + head) * hd;
  var my_seq = 0u;
  var my_pos = 0u;
  if (valid) {
    my_seq = token_seq(token);
    my_pos = token_pos(token);
    for (var d = lane; d < hd; d += LANES) { q_tile[slot * MAX_HEAD_DIM + d] = q[row + d]; }
  }
  if (lid < SLOTS) {
    let t = t0 + lid;
    let present = lid < tb && t < params.n_tokens;
    tok_done[lid] = select(1u, 0u, present);
    if (present) {
      tok_seq[lid] = token_seq(t);
      tok_pos[lid] = token_pos(t);
    }
  }
  workgroupBarrier();

  // Online softmax state of this thread's query (every lane keeps identical m and l).
  var m = 0.0;
  var l = 0.0;
  var acc: array<f32, DIMS_PER_LANE>;

  for (var iter = 0u; iter < SLOTS; iter++) {
    // Thread 0 picks the next sequence among the group's tokens and the last position any of
    // them needs; the rest wait on the uniform load (which is also the barrier).
    if (lid == 0u) {
      var found = 0u;
      var seq = 0u;
      var last = 0u;
      for (var i = 0u; i < SLOTS; i++) {
        if (tok_done[i] == 0u) {
          if (found == 0u) {
            found = 1u;
            seq = tok_seq[i];
            last = tok_pos[i];
          }
          if (tok_seq[i] == seq) {
            last = max(last, tok_pos[i]);
            tok_done[i] = 1u;
          }
        }
      }
      seg_found = found;
      seg_seq = seq;
      seg_last = last;
    }
    if (workgroupUniformLoad(&seg_found) == 0u) { break; }
    let seq = workgroupUniformLoad(&seg_seq);
    let last = workgroupUniformLoad(&seg_last);
    let table_base = table_offset(seq);
    let in_seg = valid && my_seq == seq;

    // Counting tiles (not positions) cannot wrap around even for a bogus position near 2^32.
    let n_tiles = last / TILE + 1u;
    for (var tile = 0u; tile < n_tiles; tile++) {
      let start = tile * TILE;
      // Gather the tile's keys and values (positions start.. up to last) from their blocks.
      for (var e = lid; e < TILE * hd; e += WG) {
        let j = e / hd;
        let pos = start + j;
        if (pos <= last) {
          let at = kv_base(table_base, pos, kvh);
          k_tile[e] = k_at(at.x, at.y + e % hd);
          v_tile[e] = v_at(at.x, at.y + e % hd);
        }
      }
      workgroupBarrier();

      // Keys this query sees in the tile: start..min(start + TILE - 1, p).
      let live = in_seg && start <= my_pos;
      var n = 0u;
      if (live) { n = min(TILE, my_pos + 1u - start); }
      for (var j = lane; j < n; j += LANES) {
        var dot = 0.0;
        for (var d = 0u; d < hd; d++) { dot += q_tile[slot * MAX_HEAD_DIM + d] * k_tile[j * hd + d]; }
        scores[slot * TILE + j] = dot * params.scale;
      }
      workgroupBarrier();

      if (live) {
        var tile_max = scores[slot * TILE];
        for (var j = 1u; j < n; j++) { tile_max = max(tile_max, scores[slot * TILE + j]); }
        let mc = rescale(m, tile_max, start);
        let m_new = mc.x;
        let corr = mc.y;
        l = l * corr;
        for (var i = 0u; i < DIMS_PER_LANE; i++) { acc[i] = acc[i] * corr; }
        for (var j = 0u; j < n; j++) {
          let pj = exp(scores[slot * TILE + j] - m_new);
          l = l + pj;
          for (var i = 0u; i < DIMS_PER_LANE; i++) {
            let d = lane + i * LANES;
            if (d < hd) { acc[i] = acc[i] + pj * v_tile[j * hd + d]; }
          }
        }
        m = m_new;
      }
      // The next tile overwrites k_tile, v_tile and scores.
      workgroupBarrier();
    }

    if (in_seg) {
      for (var i = 0u; i < DIMS_PER_LANE; i++) {
        let d = lane + i * LANES;
        if (d < hd) { out[row + d] = acc[i] / l; }
      }
    }
  }
}

@compute @workgroup_size(64)
fn main_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * params.groups_x + wid.x) * 64u + lid;
  if (idx >= params.n_tokens * params.n_heads) { return; }
  let hd = params.head_dim;
  let token = idx / params.n_heads;
  let head = idx % params.n_heads;
  let kvh = head / params.group_size;
  let my_pos = token_pos(token);
  let table_base = table_offset(token_seq(token));
  let row = (token * params.n_heads + head) * hd;

  var qv: array<f32, MAX_HEAD_DIM>;
  var acc: array<f32, MAX_HEAD_DIM>;
  for (var d = 0u; d < hd; d++) { qv[d] = q[row + d]; acc[d] = 0.0; }
  var sc: array<f32, TILE>;
  var kv_at: array<vec2<u32>, TILE>;
  var m = 0.0;
  var l = 0.0;
  let n_tiles = my_pos / TILE + 1u;
  for (var tile = 0u; tile < n_tiles; tile++) {
    let start = tile * TILE;
    let n = min(TILE, my_pos + 1u - start);
    var tile_max = 0.0;
    for (var j = 0u; j < n; j++) {
      let at = kv_base(table_base, start + j, kvh);
      kv_at[j] = at;
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) { dot += qv[d] * k_at(at.x, at.y + d); }
      sc[j] = dot * params.scale;
      tile_max = select(max(tile_max, sc[j]), sc[j], j == 0u);
    }
    let mc = rescale(m, tile_max, start);
    let m_new = mc.x;
    let corr = mc.y;
    l = l * corr;
    for (var d = 0u; d < hd; d++) { acc[d] = acc[d] * corr; }
    for (var j = 0u; j < n; j++) {
      let pj = exp(sc[j] - m_new);
      l = l + pj;
      let at = kv_at[j];
      for (var d = 0u; d < hd; d++) { acc[d] = acc[d] + pj * v_at(at.x, at.y + d); }
    }
    m = m_new;
  }
  for (var d = 0u; d < hd; d++) { out[row + d] = acc[d] / l; }
}
