import type { ModelConfig } from '../../domain/model-config.ts';
import { beginStepPass, endStepPass, type KernelContext, type Recorder } from './dispatch.ts';
import type { GpuKvPool } from './kv-pool.ts';
import type { StepPlan } from './step-plan.ts';
import type { GpuLayerWeights, GpuModelWeights } from './weights.ts';
import { encodeEmbedding, encodeGatherRows, encodeRmsNorm, encodeRope, encodeSwiglu } from './ops/basic.ts';
import { encodeMatmul } from './ops/matmul.ts';
import { encodeRopeKv, ropeKvFits } from './ops/rope-kv.ts';
import { buildStepMeta, encodeKvWrite, encodePagedAttention, type StepMeta } from './ops/attention.ts';
import { encodeSample, packSampleParams } from './ops/sampling.ts';
import { encodePenalties, packPenaltyEntries } from './ops/penalties.ts';
import { Usage } from './usage.ts';

/** Per-step GPU inputs (uploaded tables) and scratch activations, all transient. */
interface StepBuffers {
  readonly tokenIds: GPUBuffer;
  readonly positions: GPUBuffer;
  readonly slots: GPUBuffer;
  /** The attention kernel's step tables, one buffer for every layer. */
  readonly meta: StepMeta;
  readonly x: GPUBuffer;
  readonly h: GPUBuffer;
  readonly q: GPUBuffer;
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  readonly attn: GPUBuffer;
  readonly gate: GPUBuffer;
  readonly up: GPUBuffer;
  readonly act: GPUBuffer;
}

export interface ForwardResources {
  readonly ctx: KernelContext;
  readonly config: ModelConfig;
  readonly weights: GpuModelWeights;
  readonly kv: GpuKvPool;
  readonly invFreq: GPUBuffer;
}

/** Output buffers of a step that the caller reads back. */
export interface StepOutputs {
  readonly tokens?: GPUBuffer;
  readonly logits?: GPUBuffer;
}

function uploadTable(ctx: KernelContext, label: string, data: Uint32Array, transients: GPUBuffer[]): GPUBuffer {
  const buf = ctx.buffers.acquire(label, Math.max(16, data.byteLength));
  ctx.buffers.write(buf, data);
  transients.push(buf);
  return buf;
}

function uploadMeta(ctx: KernelContext, plan: StepPlan, t: GPUBuffer[]): StepMeta {
  const { data, ...at } = buildStepMeta({ tokenSeq: plan.tokenSeq, tokenPos: plan.positions, tableOffsets: plan.tableOffsets, blockTables: plan.blockTables });
  return { buffer: uploadTable(ctx, 'step:meta', data, t), ...at };
}

function scratch(ctx: KernelContext, label: string, floats: number, transients: GPUBuffer[]): GPUBuffer {
  const buf = ctx.buffers.acquire(label, Math.max(16, floats * 4));
  transients.push(buf);
  return buf;
}

function allocate(r: ForwardResources, plan: StepPlan, t: GPUBuffer[]): StepBuffers {
  const { ctx, config: c } = r;
  const T = plan.nTokens;
  return {
    tokenIds: uploadTable(ctx, 'step:tokenIds', plan.tokenIds, t),
    positions: uploadTable(ctx, 'step:positions', plan.positions, t),
    slots: uploadTable(ctx, 'step:slots', plan.slots, t),
    meta: uploadMeta(ctx, plan, t),
    x: scratch(ctx, 'act:x', T * c.hiddenSize, t),
    h: scratch(ctx, 'act:h', T * c.hiddenSize, t),
    q: scratch(ctx, 'act:q', T * c.nHeads * c.headDim, t),
    k: scratch(ctx, 'act:k', T * c.nKvHeads * c.headDim, t),
    v: scratch(ctx, 'act:v', T * c.nKvHeads * c.headDim, t),
    attn: scratch(ctx, 'act:attn', T * c.nHeads * c.headDim, t),
    gate: scratch(ctx, 'act:gate', T * c.intermediateSize, t),
    up: scratch(ctx, 'act:up', T * c.intermediateSize, t),
    act: scratch(ctx, 'act:swiglu', T * c.intermediateSize, t),
  };
}

function encodeAttention(r: ForwardResources, enc: Recorder, b: StepBuffers, plan: StepPlan, layer: number, w: GpuLayerWeights, t: GPUBuffer[]): void {
  const { ctx, config: c } = r;
  const T = plan.nTokens;
  const d = c.hiddenSize;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  encodeRmsNorm(ctx, enc, { input: b.x, weight: w.inputNorm, output: b.h, rows: T, width: d, eps: c.rmsNormEps }, t);
  encodeMatmul(ctx, enc, { x: b.h, w: w.q, bias: w.qBias, out: b.q, M: T, N: qDim, K: d, label: 'q_proj' }, t);
  encodeMatmul(ctx, enc, { x: b.h, w: w.k, bias: w.kBias, out: b.k, M: T, N: kvDim, K: d, label: 'k_proj' }, t);
  encodeMatmul(ctx, enc, { x: b.h, w: w.v, bias: w.vBias, out: b.v, M: T, N: kvDim, K: d, label: 'v_proj' }, t);
  if (w.qNorm && w.kNorm) {
    encodeRmsNorm(ctx, enc, { input: b.q, weight: w.qNorm, output: b.q, rows: T * c.nHeads, width: c.headDim, eps: c.rmsNormEps }, t);
    encodeRmsNorm(ctx, enc, { input: b.k, weight: w.kNorm, output: b.k, rows: T * c.nKvHeads, width: c.headDim, eps: c.rmsNormEps }, t);
  }
  const kPool = r.kv.keys[layer];
  const vPool = r.kv.values[layer];
  const kvDtype = r.kv.spec.dtype;
  const blocksPerShard = r.kv.blocksPerShard;
  const slotBase = (s: number): number => s * blocksPerShard * r.kv.spec.blockTokens;
  if (ropeKvFits(c.headDim)) {
    // RoPE of q and k fused with the KV write; a sharded pool is written one shard per dispatch
    // (each skips the other shard's slots), q rotated by the first.
    kPool.forEach((kShard, s) => {
      encodeRopeKv(ctx, enc, {
        q: b.q, k: b.k, v: b.v, kPool: kShard, vPool: vPool[s], kvDtype, positions: b.positions, invFreq: r.invFreq, slots: b.slots,
        slotBase: slotBase(s), rotateQ: s === 0, nTokens: T, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim,
      }, t);
    });
  } else {
    const rope = { positions: b.positions, invFreq: r.invFreq, nTokens: T, headDim: c.headDim };
    encodeRope(ctx, enc, { ...rope, x: b.q, nHeads: c.nHeads }, t);
    encodeRope(ctx, enc, { ...rope, x: b.k, nHeads: c.nKvHeads }, t);
    kPool.forEach((kShard, s) => {
      encodeKvWrite(ctx, enc, { k: b.k, v: b.v, kPool: kShard, vPool: vPool[s], kvDtype, slots: b.slots, slotBase: slotBase(s), nTokens: T, nKvHeads: c.nKvHeads, headDim: c.headDim }, t);
    });
  }
  encodePagedAttention(ctx, enc, {
    q: b.q, kPool, vPool, blocksPerShard, kvDtype, out: b.attn,
    meta: b.meta,
    nTokens: T, nSeqs: plan.nSeqs, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim,
    blockTokens: r.kv.spec.blockTokens, scale: 1 / Math.sqrt(c.headDim),
  }, t);
  // o_proj with the residual add fused: x += attn Woᵀ (+ b).
  encodeMatmul(ctx, enc, { x: b.attn, w: w.o, bias: w.oBias, out: b.x, accumulate: true, M: T, N: d, K: qDim, label: 'o_proj' }, t);
}

function encodeMlp(r: ForwardResources, enc: Recorder, b: StepBuffers, T: number, w: GpuLayerWeights, t: GPUBuffer[]): void {
  const { ctx, config: c } = r;
  const d = c.hiddenSize;
  const f = c.intermediateSize;
  encodeRmsNorm(ctx, enc, { input: b.x, weight: w.postNorm, output: b.h, rows: T, width: d, eps: c.rmsNormEps }, t);
  encodeMatmul(ctx, enc, { x: b.h, w: w.gate, out: b.gate, M: T, N: f, K: d, label: 'gate_proj' }, t);
  encodeMatmul(ctx, enc, { x: b.h, w: w.up, out: b.up, M: T, N: f, K: d, label: 'up_proj' }, t);
  encodeSwiglu(ctx, enc, { gate: b.gate, up: b.up, out: b.act, n: T * f }, t);
  encodeMatmul(ctx, enc, { x: b.act, w: w.down, out: b.x, accumulate: true, M: T, N: d, K: f, label: 'down_proj' }, t);
}

/** Final norm, lm_head on the sampled rows only, then sampling on the GPU. */
function encodeHead(r: ForwardResources, enc: Recorder, b: StepBuffers, plan: StepPlan, t: GPUBuffer[]): StepOutputs {
  const { ctx, config: c } = r;
  const S = plan.sampleRows.length;
  if (S === 0) return {};
  const d = c.hiddenSize;
  const rows = uploadTable(ctx, 'step:sampleRows', plan.sampleRows, t);
  const last = scratch(ctx, 'act:last', S * d, t);
  const normed = scratch(ctx, 'act:lastNormed', S * d, t);
  const logits = scratch(ctx, 'act:logits', S * c.vocabSize, t);
  encodeGatherRows(ctx, enc, { input: b.x, rows, output: last, nOut: S, width: d }, t);
  encodeRmsNorm(ctx, enc, { input: last, weight: r.weights.finalNorm, output: normed, rows: S, width: d, eps: c.rmsNormEps }, t);
  encodeMatmul(ctx, enc, { x: normed, w: r.weights.lmHead, out: logits, M: S, N: c.vocabSize, K: d, label: 'lm_head' }, t);
  const packed = new Uint8Array(packSampleParams(plan.sampling.map((s) => ({ ...s }))));
  const params = ctx.buffers.acquire('step:sampleParams', packed.byteLength, Usage.STORAGE | Usage.COPY_DST);
  t.push(params);
  ctx.buffers.write(params, packed);
  // Penalties rewrite the logits in place, so logits read back are the ones sampled from.
  const entries = packPenaltyEntries(plan.sampling.map((s) => ({ sampling: s, history: s.history })), c.vocabSize);
  encodePenalties(ctx, enc, { logits, params, entries, rows: S, vocab: c.vocabSize }, t);
  const tokens = scratch(ctx, 'step:sampled', S, t);
  encodeSample(ctx, enc, { logits, params, out: tokens, nSeqs: S, vocab: c.vocabSize }, t);
  return { tokens, logits };
}

/**
 * Record a whole batched forward step into one encoder, as ONE compute pass: every kernel of
 * every layer is a dispatch in it (WebGPU orders a pass's dispatches and makes each one's writes
 * visible to the next), so a step costs one pass, not one per kernel.
 */
export function encodeForward(r: ForwardResources, encoder: GPUCommandEncoder, plan: StepPlan, transients: GPUBuffer[]): StepOutputs {
  const b = allocate(r, plan, transients);
  const c = r.config;
  // Uniform slots: ~16 dispatches per layer (more with two KV shards or q/k norms) and the head;
  // any beyond fall back to their own uniform buffer.
  const slots = r.weights.layers.length * 20 + 16;
  const enc = beginStepPass(encoder, 'forward-step', { ctx: r.ctx, slots, transients });
  try {
    encodeEmbedding(r.ctx, enc, { table: r.weights.embed, tokenIds: b.tokenIds, out: b.x, nTokens: plan.nTokens, hidden: c.hiddenSize }, transients);
    r.weights.layers.forEach((w, layer) => {
      encodeAttention(r, enc, b, plan, layer, w, transients);
      encodeMlp(r, enc, b, plan.nTokens, w, transients);
    });
    return encodeHead(r, enc, b, plan, transients);
  } finally {
    endStepPass(enc);
  }
}
