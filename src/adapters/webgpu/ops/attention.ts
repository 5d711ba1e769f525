import kvWriteWgsl from '../kernels/kv_write.wgsl?raw';
import kvStoreF32Wgsl from '../kernels/kv_store_f32.wgsl?raw';
import kvStoreF16Wgsl from '../kernels/kv_store_f16.wgsl?raw';
import kvReadF32Wgsl from '../kernels/kv_read_f32.wgsl?raw';
import kvReadF16Wgsl from '../kernels/kv_read_f16.wgsl?raw';
import kvReadF16NativeWgsl from '../kernels/kv_read_f16_native.wgsl?raw';
import pagedAttentionWgsl from '../kernels/paged_attention.wgsl?raw';
import { InvalidRequestError } from '../../../domain/errors.ts';
import { kvBytesPerElement, type KvDtype } from '../../../domain/model-cache-spec.ts';
import { isCpuDevice } from '../device.ts';
import { commandEncoder, dispatch, type KernelContext, type Recorder } from '../dispatch.ts';
import type { KernelSource, PipelineVariant } from '../pipelines.ts';
import { grid1d } from './elementwise.ts';

export const KV_WRITE: KernelSource = { name: 'kv_write', code: kvWriteWgsl };
export const PAGED_ATTENTION: KernelSource = { name: 'paged_attention', code: pagedAttentionWgsl };
/** The barrier-free entry point, for CPU adapters (see the kernel's header). */
export const PAGED_ATTENTION_SERIAL: KernelSource = { name: 'paged_attention_serial', code: pagedAttentionWgsl, entryPoint: 'main_serial' };

export type AttentionKernel = 'tiled' | 'serial';

// The KV dtype is a prepended accessor (kv_store_* for the write, kv_read_* for attention), so
// both dtypes share each kernel's body verbatim. f16 pools are always written with
// pack2x16float; reads use native f16 loads where shader-f16 exists (exact widening, same bits).
const prepend = (key: string, wgsl: string): PipelineVariant => ({ key, transform: (code) => `${wgsl}\n${code}` });
export const KV_STORE: Readonly<Record<KvDtype, PipelineVariant>> = { f32: prepend('f32', kvStoreF32Wgsl), f16: prepend('f16', kvStoreF16Wgsl) };
const KV_READ: Readonly<Record<KvDtype, PipelineVariant>> = { f32: prepend('f32', kvReadF32Wgsl), f16: prepend('f16', kvReadF16Wgsl) };
const KV_READ_F16_NATIVE = prepend('f16-native', kvReadF16NativeWgsl);

function kvReadVariant(device: GPUDevice, dtype: KvDtype): PipelineVariant {
  return dtype === 'f16' && device.features.has('shader-f16') ? KV_READ_F16_NATIVE : KV_READ[dtype];
}

function requireKvDtype(dtype: KvDtype): void {
  if (dtype !== 'f32' && dtype !== 'f16') throw new InvalidRequestError(`unknown KV dtype ${String(dtype)}`, { dtype });
}

/** Constants of paged_attention.wgsl that the host must respect (they are not shapes). */
export const ATTENTION_MAX_HEAD_DIM = 128;
/**
 * Shards per side the attention kernel binds: q, out, the step tables (one binding) and 2 x 2
 * shard bindings are 7 storage buffers, within the 8 that WebGPU guarantees.
 */
export const MAX_KV_SHARDS = 2;
/** Queries (token x head) one workgroup holds. */
const SLOTS = 16;
/** Workgroup memory the kernel declares: K, V tiles (16 x 128), queries (16 x 128), scores (16 x 16), bookkeeping. */
const WORKGROUP_BYTES = (16 * 128 * 2 + 16 * 128 + 16 * 16) * 4 + 3 * 16 * 4 + 3 * 4;

export interface KvWriteArgs {
  /** New keys/values [nTokens, nKvHeads, headDim] f32 (keys after RoPE). */
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  /** Pools [block, tokenInBlock, nKvHeads, headDim] of one layer, in `kvDtype`. */
  readonly kPool: GPUBuffer;
  readonly vPool: GPUBuffer;
  /** Storage of the pools (default 'f32'); f16 is packed halves (see kv_store_f16.wgsl). */
  readonly kvDtype?: KvDtype;
  /** u32 [nTokens]: destination slot (blockId * blockTokens + offset) of each token. */
  readonly slots: GPUBuffer;
  /**
   * First global slot of the bound pools (a shard of a sharded pool; default 0): tokens whose
   * slot lies outside [slotBase, slotBase + slots the pools hold) are left to other dispatches.
   */
  readonly slotBase?: number;
  readonly nTokens: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/** The four step tables, each in its own buffer; the kernel call copies them into one. */
export interface StepTableBuffers {
  /** u32 [nTokens]: which sequence each query token belongs to. */
  readonly tokenSeq: GPUBuffer;
  /** u32 [nTokens]: absolute position of each query token. */
  readonly tokenPos: GPUBuffer;
  /** u32: all sequences' block tables concatenated. */
  readonly blockTables: GPUBuffer;
  /** u32 [nSeqs]: where each sequence's table starts in blockTables. */
  readonly tableOffsets: GPUBuffer;
}

/** The step tables already in one buffer (buildStepMeta, uploaded once per step for all layers). */
export interface StepMeta {
  readonly buffer: GPUBuffer;
  readonly posAt: number;
  readonly offsetsAt: number;
  readonly tablesAt: number;
}

export type PagedAttentionArgs = PagedAttentionCore & (StepTableBuffers | { readonly meta: StepMeta });

export interface PagedAttentionCore {
  /** Entry point; default: 'serial' on a CPU adapter, else 'tiled'. Tests pin each one. */
  readonly kernel?: AttentionKernel;
  /** [nTokens, nHeads, headDim] f32, after RoPE. */
  readonly q: GPUBuffer;
  /** The pool of one layer: one buffer, or up to MAX_KV_SHARDS shards of `blocksPerShard` blocks each. */
  readonly kPool: GPUBuffer | readonly GPUBuffer[];
  readonly vPool: GPUBuffer | readonly GPUBuffer[];
  /** Blocks per shard (global block b is block b % blocksPerShard of shard b / blocksPerShard). */
  readonly blocksPerShard?: number;
  /** Storage of the pools (default 'f32'). */
  readonly kvDtype?: KvDtype;
  /** [nTokens, nHeads, headDim] f32. */
  readonly out: GPUBuffer;
  readonly nTokens: number;
  readonly nSeqs: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly blockTokens: number;
  /** 1 / sqrt(headDim) for Llama. */
  readonly scale: number;
}

function requireCount(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > 0xffffffff) {
    throw new InvalidRequestError(`${name} must be an integer >= ${min}, got ${value}`, { name, value });
  }
}

function requireBytes(name: string, buffer: GPUBuffer, bytes: number): void {
  if (buffer.size < bytes) {
    throw new InvalidRequestError(`${name} holds ${buffer.size} bytes, needs ${bytes}`, { name, size: buffer.size, bytes });
  }
}

/** A buffer bound read_write may not be bound again in the same dispatch (WebGPU usage rule). */
function requireDistinct(name: string, written: GPUBuffer, others: Readonly<Record<string, GPUBuffer>>): void {
  for (const [other, buffer] of Object.entries(others)) {
    if (buffer === written) {
      throw new InvalidRequestError(`${name} and ${other} must be different buffers`, { name, other });
    }
  }
}

function requireHeadDim(headDim: number): void {
  requireCount('headDim', headDim, 1);
  if (headDim > ATTENTION_MAX_HEAD_DIM) {
    throw new InvalidRequestError(`headDim ${headDim} exceeds the kernel's maximum ${ATTENTION_MAX_HEAD_DIM}`, { headDim });
  }
}

/**
 * Scatter nTokens new keys and values into their pool slots. A slot beyond the pool is skipped
 * on the device (its contents cannot be checked here without a readback).
 */
export function encodeKvWrite(ctx: KernelContext, encoder: Recorder, a: KvWriteArgs, transients: GPUBuffer[]): void {
  requireCount('nTokens', a.nTokens, 0);
  requireCount('nKvHeads', a.nKvHeads, 1);
  requireHeadDim(a.headDim);
  const dtype = a.kvDtype ?? 'f32';
  requireKvDtype(dtype);
  if (a.headDim % 2 !== 0) throw new InvalidRequestError(`kv write needs an even headDim, got ${a.headDim}`, { headDim: a.headDim });
  const row = a.nKvHeads * a.headDim;
  const n = a.nTokens * row;
  requireBytes('k', a.k, n * 4);
  requireBytes('v', a.v, n * 4);
  requireBytes('slots', a.slots, a.nTokens * 4);
  if (a.slotBase !== undefined) requireCount('slotBase', a.slotBase, 0);
  requireDistinct('kPool', a.kPool, { vPool: a.vPool, k: a.k, v: a.v, slots: a.slots });
  requireDistinct('vPool', a.vPool, { k: a.k, v: a.v, slots: a.slots });
  const poolSlots = Math.floor(Math.min(a.kPool.size, a.vPool.size) / (row * kvBytesPerElement(dtype)));
  if (poolSlots < 1) {
    throw new InvalidRequestError('KV pools hold no slot of this shape', { kPool: a.kPool.size, vPool: a.vPool.size, row });
  }
  if (n === 0) return;
  const { groups, strideX } = grid1d(ctx, n / 2);
  if (groups[1] > ctx.device.limits.maxComputeWorkgroupsPerDimension) {
    throw new InvalidRequestError(`kv write of ${n} elements exceeds the dispatch grid`, { n });
  }
  dispatch(
    ctx,
    encoder,
    ctx.pipelines.get(KV_WRITE, KV_STORE[dtype]),
    `kv_write:${dtype}`,
    [a.k, a.v, a.kPool, a.vPool, a.slots],
    groups,
    new Uint32Array([n / 2, row, Math.min(poolSlots, 0xffffffff), strideX, a.slotBase ?? 0, 0, 0, 0]),
    transients,
  );
}

/** How a dispatch is cut into workgroups; does not change any query's arithmetic. */
export function attentionGrid(nTokens: number, nSeqs: number, nHeads: number, nKvHeads: number): {
  tokensPerGroup: number;
  headsPerGroup: number;
  headChunks: number;
  groups: [number, number];
} {
  const groupSize = nHeads / nKvHeads;
  const headsPerGroup = Math.min(groupSize, SLOTS);
  const headChunks = Math.ceil(groupSize / headsPerGroup);
  // Tokens of one sequence share K/V tiles inside a workgroup; tokens of different sequences in
  // one workgroup run one after another. So pack about as many tokens as a sequence brings:
  // one per workgroup for pure decode (parallelism), up to the slot limit for prefill chunks.
  const perSeq = Math.max(1, Math.floor(nTokens / Math.max(1, nSeqs)));
  const tokensPerGroup = Math.max(1, Math.min(Math.floor(SLOTS / headsPerGroup), perSeq));
  return { tokensPerGroup, headsPerGroup, headChunks, groups: [Math.ceil(nTokens / tokensPerGroup), nKvHeads * headChunks] };
}

/**
 * Causal paged attention of nTokens query tokens (decode tokens and prefill chunks, of any
 * sequences, in any order). The new tokens' K/V must already be in the pool (encodeKvWrite).
 * A query's output is bitwise independent of the batch, the block size and block placement.
 */
export function encodePagedAttention(ctx: KernelContext, encoder: Recorder, a: PagedAttentionArgs, transients: GPUBuffer[]): void {
  requireCount('nTokens', a.nTokens, 0);
  requireCount('nSeqs', a.nSeqs, 1);
  requireCount('nHeads', a.nHeads, 1);
  requireCount('nKvHeads', a.nKvHeads, 1);
  requireHeadDim(a.headDim);
  requireCount('blockTokens', a.blockTokens, 1);
  if ((a.blockTokens & (a.blockTokens - 1)) !== 0) {
    throw new InvalidRequestError(`blockTokens ${a.blockTokens} is not a power of two`, { blockTokens: a.blockTokens });
  }
  if (a.nHeads % a.nKvHeads !== 0) {
    throw new InvalidRequestError('nHeads must be a multiple of nKvHeads', { nHeads: a.nHeads, nKvHeads: a.nKvHeads });
  }
  if (!Number.isFinite(a.scale) || a.scale <= 0) {
    throw new InvalidRequestError(`scale must be a positive finite number, got ${a.scale}`, { scale: a.scale });
  }
  const qBytes = a.nTokens * a.nHeads * a.headDim * 4;
  requireBytes('q', a.q, qBytes);
  requireBytes('out', a.out, qBytes);
  const tables: Record<string, GPUBuffer> = 'meta' in a ? { meta: a.meta.buffer } : { tokenSeq: a.tokenSeq, tokenPos: a.tokenPos, blockTables: a.blockTables, tableOffsets: a.tableOffsets };
  if ('meta' in a) {
    requireBytes('meta', a.meta.buffer, (a.meta.tablesAt + 1) * 4);
    if (a.meta.posAt !== a.nTokens || a.meta.offsetsAt !== 2 * a.nTokens || a.meta.tablesAt !== 2 * a.nTokens + a.nSeqs) {
      throw new InvalidRequestError('step meta offsets do not match nTokens and nSeqs', { ...a.meta, buffer: undefined, nTokens: a.nTokens, nSeqs: a.nSeqs });
    }
  } else {
    requireBytes('tokenSeq', a.tokenSeq, a.nTokens * 4);
    requireBytes('tokenPos', a.tokenPos, a.nTokens * 4);
    requireBytes('tableOffsets', a.tableOffsets, a.nSeqs * 4);
    requireBytes('blockTables', a.blockTables, 4);
  }
  const dtype = a.kvDtype ?? 'f32';
  requireKvDtype(dtype);
  const blockBytes = a.blockTokens * a.nKvHeads * a.headDim * kvBytesPerElement(dtype);
  const { kShards, vShards, blocksPerShard } = poolShards(a, blockBytes);
  requireDistinct('out', a.out, {
    q: a.q,
    ...Object.fromEntries([...kShards, ...vShards].map((b, i) => [`pool${i}`, b])),
    ...tables,
  });
  const limits = ctx.device.limits;
  if (limits.maxComputeWorkgroupStorageSize < WORKGROUP_BYTES) {
    throw new InvalidRequestError('the device has too little workgroup memory for paged attention', {
      needed: WORKGROUP_BYTES,
      limit: limits.maxComputeWorkgroupStorageSize,
    });
  }
  if (a.nTokens === 0) return;
  const grid = attentionGrid(a.nTokens, a.nSeqs, a.nHeads, a.nKvHeads);
  if (grid.groups[0] > limits.maxComputeWorkgroupsPerDimension || grid.groups[1] > limits.maxComputeWorkgroupsPerDimension) {
    throw new InvalidRequestError('paged attention dispatch exceeds the workgroup grid limit', { groups: grid.groups });
  }
  const meta = 'meta' in a ? a.meta : encodeStepMeta(ctx, commandEncoder(encoder, 'paged attention from separate step tables'), a, transients);
  const uniforms = new ArrayBuffer(64);
  new Uint32Array(uniforms, 44, 4).set([blocksPerShard, meta.posAt, meta.tablesAt, meta.offsetsAt]);
  new Uint32Array(uniforms, 0, 10).set([
    a.nTokens,
    a.nSeqs,
    a.nHeads,
    a.nKvHeads,
    a.headDim,
    a.blockTokens,
    grid.tokensPerGroup,
    grid.headsPerGroup,
    a.nHeads / a.nKvHeads,
    grid.headChunks,
  ]);
  new Float32Array(uniforms, 40, 1)[0] = a.scale;
  const serial = (a.kernel ?? (isCpuDevice(ctx.device) ? 'serial' : 'tiled')) === 'serial';
  let groups = grid.groups;
  if (serial) {
    const spread = grid1d(ctx, a.nTokens * a.nHeads, 64);
    groups = spread.groups;
    new Uint32Array(uniforms, 60, 1)[0] = spread.strideX / 64;
  }
  dispatch(
    ctx,
    encoder,
    ctx.pipelines.get(serial ? PAGED_ATTENTION_SERIAL : PAGED_ATTENTION, kvReadVariant(ctx.device, dtype)),
    `paged_attention:${dtype}`,
    // One shard: its buffers are bound again as shard 1 (read-only bindings may repeat).
    [a.q, kShards[0], vShards[0], a.out, meta.buffer, kShards[1] ?? kShards[0], vShards[1] ?? vShards[0]],
    groups,
    uniforms,
    transients,
  );
}

/** The pool's shards, checked: at most MAX_KV_SHARDS per side, each holding blocksPerShard blocks. */
function poolShards(a: PagedAttentionArgs, blockBytes: number): { kShards: readonly GPUBuffer[]; vShards: readonly GPUBuffer[]; blocksPerShard: number } {
  const kShards: readonly GPUBuffer[] = isShardList(a.kPool) ? a.kPool : [a.kPool];
  const vShards: readonly GPUBuffer[] = isShardList(a.vPool) ? a.vPool : [a.vPool];
  if (kShards.length < 1 || kShards.length > MAX_KV_SHARDS || vShards.length !== kShards.length) {
    throw new InvalidRequestError(`paged attention binds 1 to ${MAX_KV_SHARDS} KV shards per side, got ${kShards.length} K and ${vShards.length} V`, {
      k: kShards.length,
      v: vShards.length,
    });
  }
  // Unsharded: every block id is in shard 0.
  const blocksPerShard = kShards.length === 1 ? (a.blocksPerShard ?? 0xffffffff) : (a.blocksPerShard ?? 0);
  requireCount('blocksPerShard', blocksPerShard, 1);
  kShards.forEach((b, i) => requireBytes(`kPool[${i}]`, b, blockBytes));
  vShards.forEach((b, i) => requireBytes(`vPool[${i}]`, b, blockBytes));
  return { kShards, vShards, blocksPerShard };
}

function isShardList(pool: GPUBuffer | readonly GPUBuffer[]): pool is readonly GPUBuffer[] {
  return Array.isArray(pool);
}

/**
 * The kernel's four step tables copied into one buffer (token_seq, token_pos, table_offsets,
 * block_tables), so they take one binding and leave room for two KV shards per side.
 */
function encodeStepMeta(ctx: KernelContext, encoder: GPUCommandEncoder, a: PagedAttentionCore & StepTableBuffers, transients: GPUBuffer[]): StepMeta {
  const posAt = a.nTokens;
  const offsetsAt = 2 * a.nTokens;
  const tablesAt = offsetsAt + a.nSeqs;
  const buffer = ctx.buffers.acquire('attention:step-meta', tablesAt * 4 + a.blockTables.size);
  transients.push(buffer);
  encoder.copyBufferToBuffer(a.tokenSeq, 0, buffer, 0, a.nTokens * 4);
  encoder.copyBufferToBuffer(a.tokenPos, 0, buffer, posAt * 4, a.nTokens * 4);
  encoder.copyBufferToBuffer(a.tableOffsets, 0, buffer, offsetsAt * 4, a.nSeqs * 4);
  encoder.copyBufferToBuffer(a.blockTables, 0, buffer, tablesAt * 4, a.blockTables.size);
  return { buffer, posAt, offsetsAt, tablesAt };
}

/**
 * The step tables laid out as the kernel's step_meta binding (token_seq, token_pos,
 * table_offsets, block_tables back to back), built on the host so that a step uploads them once
 * for all layers (no copy commands, which a compute pass cannot hold).
 */
export function buildStepMeta(t: { readonly tokenSeq: Uint32Array; readonly tokenPos: Uint32Array; readonly tableOffsets: Uint32Array; readonly blockTables: Uint32Array }): { data: Uint32Array; posAt: number; offsetsAt: number; tablesAt: number } {
  const n = t.tokenSeq.length;
  const posAt = n;
  const offsetsAt = 2 * n;
  const tablesAt = offsetsAt + t.tableOffsets.length;
  const data = new Uint32Array(tablesAt + Math.max(1, t.blockTables.length));
  data.set(t.tokenSeq, 0);
  data.set(t.tokenPos, posAt);
  data.set(t.tableOffsets, offsetsAt);
  data.set(t.blockTables, tablesAt);
  return { data, posAt, offsetsAt, tablesAt };
}
