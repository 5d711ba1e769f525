/**
 * Memory budgets of the real models the twins copy (tools/twin-specs.ts), at their FULL layer
 * count, computed from config.json alone (no model is loaded or run): bytes of weights by weight
 * format, and bytes of KV per 1,000 tokens by KV dtype, beside WebLLM's q4f16_1 and
 * transformers.js' q4f16 builds of the same models, derived from their formats:
 *
 * - ours, bf16/f16: 2 bytes per matrix weight (16-bit checkpoints stay 16-bit on the GPU).
 * - ours, q8 / q4: group-wise symmetric int8 / int4, 32 weights per group, one f16 scale per
 *   group: (32 + 2) / 32 = 1.0625 and (16 + 2) / 32 = 0.5625 bytes per weight. The embedding is
 *   quantized like every other matrix (a tied lm_head is the same tensor, counted once).
 * - every format of ours: norm weights and biases as f32 (the loader widens vectors; they are
 *   < 0.1 % of the bytes).
 * - WebLLM q4f16_1 (MLC's GroupQuantize: int4 packed 8 per u32, group size 32, one f16 scale
 *   per group, no zero point, model dtype f16): 0.5625 bytes per weight for every linear AND the
 *   embedding (a tied lm_head reuses it), norms f16, KV cache f16.
 * - transformers.js q4f16 (its quantize script: ONNX MatMulNBits, 4 bits, block 32, symmetric,
 *   so one f16 scale per block and no zero points; then the rest of the graph to f16): 0.5625
 *   bytes per MatMul weight; the embedding is a Gather and stays f16 (2 bytes per weight); the
 *   ONNX export unties the lm_head, which becomes its own quantized MatMul; norms and biases
 *   f16; KV (past_key_values) f16.
 * These are derived from the formats, not measured by running either runtime (WebLLM needs
 * TVM-compiled model libraries that cannot be built here; no ONNX export of these models exists
 * here). Activations and runtime workspaces are not included for anyone.
 */
import { parseModelConfig, type ModelConfig } from '../src/domain/model-config.ts';
import { EMBED_TOKENS, LM_HEAD, modelTensorSpecs, tensorElements } from '../src/domain/model-tensors.ts';
import { TWINS, type TwinSpec } from '../tools/twin-specs.ts';
import { table } from './lib.ts';

export const KV_TOKENS = 1000;
const GROUP = 32;
const F16 = 2;
const F32 = 4;
/** Bytes per weight of a group-quantized matrix: `bits` per weight plus one f16 scale per group. */
const groupBytes = (bits: number): number => (GROUP * bits) / 8 / GROUP + F16 / GROUP;

export interface ParamCounts {
  /** Elements of every 2-D weight except the embedding (q/k/v/o, gate/up/down, untied lm_head). */
  readonly linear: number;
  readonly embedding: number;
  /** Norm weights and biases. */
  readonly vectors: number;
}

export interface ModelMemory {
  readonly id: string;
  readonly hubId: string;
  readonly layers: number;
  readonly params: ParamCounts;
  /** Weight bytes by format. */
  readonly weights: { readonly bf16: number; readonly q8: number; readonly q4: number; readonly webllmQ4f16_1: number; readonly transformersjsQ4f16: number };
  /** KV bytes per KV_TOKENS tokens. */
  readonly kvPer1k: { readonly f32: number; readonly f16: number; readonly webllm: number; readonly transformersjs: number };
}

export function paramCounts(config: ModelConfig): ParamCounts {
  let linear = 0;
  let embedding = 0;
  let vectors = 0;
  for (const spec of modelTensorSpecs(config)) {
    const n = tensorElements(spec.shape);
    if (spec.name === EMBED_TOKENS) embedding += n;
    else if (spec.shape.length === 2) linear += n;
    else vectors += n;
  }
  return { linear, embedding, vectors };
}

/** KV bytes for `tokens` tokens: K and V, every layer, kv heads x head_dim each. */
export function kvBytes(config: ModelConfig, tokens: number, bytesPerElement: number): number {
  return 2 * config.nLayers * config.nKvHeads * config.headDim * bytesPerElement * tokens;
}

export function modelMemory(spec: TwinSpec): ModelMemory {
  const config = parseModelConfig(spec.config);
  const p = paramCounts(config);
  const matrices = p.linear + p.embedding;
  // transformers.js' export has a separate lm_head MatMul even when the checkpoint ties it.
  const tjsLmHead = config.tieWordEmbeddings ? config.vocabSize * config.hiddenSize : 0;
  return {
    id: spec.id,
    hubId: spec.hubId,
    layers: config.nLayers,
    params: p,
    weights: {
      bf16: matrices * F16 + p.vectors * F32,
      q8: matrices * groupBytes(8) + p.vectors * F32,
      q4: matrices * groupBytes(4) + p.vectors * F32,
      webllmQ4f16_1: matrices * groupBytes(4) + p.vectors * F16,
      transformersjsQ4f16: (p.linear + tjsLmHead) * groupBytes(4) + p.embedding * F16 + p.vectors * F16,
    },
    kvPer1k: {
      f32: kvBytes(config, KV_TOKENS, F32),
      f16: kvBytes(config, KV_TOKENS, F16),
      webllm: kvBytes(config, KV_TOKENS, F16),
      transformersjs: kvBytes(config, KV_TOKENS, F16),
    },
  };
}

export function modelMemoryTable(specs: readonly TwinSpec[] = TWINS): ModelMemory[] {
  return specs.map(modelMemory);
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

export function formatModelMemory(rows: readonly ModelMemory[]): string {
  const weights = table(
    'Weight bytes of the real models (full layer count, from config.json; tied lm_head counted once)',
    'ours: bf16/f16 2 B/weight; q8 and q4 group 32 + f16 scale (1.0625, 0.5625 B/weight), embedding included; vectors f32. ' +
      'WebLLM q4f16_1: int4 group 32 + f16 scale on every matrix incl. the embedding, norms f16. ' +
      'transformers.js q4f16: MatMulNBits int4 block 32 + f16 scale, embedding Gather f16, lm_head untied and quantized. Derived from the formats, not measured.',
    ['model', 'layers', 'params', 'ours bf16', 'ours q8', 'ours q4', 'q4 / bf16', 'WebLLM q4f16_1', 'transformers.js q4f16'],
    rows.map((r) => [
      r.hubId,
      r.layers,
      `${((r.params.linear + r.params.embedding + r.params.vectors) / 1e6).toFixed(1)}M`,
      mb(r.weights.bf16),
      mb(r.weights.q8),
      mb(r.weights.q4),
      `${(r.weights.q4 / r.weights.bf16).toFixed(3)}x`,
      mb(r.weights.webllmQ4f16_1),
      mb(r.weights.transformersjsQ4f16),
    ]),
  );
  const kv = table(
    `KV bytes per ${KV_TOKENS} tokens (2 x layers x kv_heads x head_dim x bytes x tokens)`,
    'ours: f32 or f16 hot pool (kvDtype); WebLLM and transformers.js keep KV in the model dtype, f16, for q4f16 builds.',
    ['model', 'kv heads x head_dim', 'ours f32', 'ours f16', 'WebLLM q4f16_1', 'transformers.js q4f16'],
    rows.map((r) => {
      const c = parseModelConfig(TWINS.find((t) => t.id === r.id)?.config ?? {});
      return [r.hubId, `${c.nKvHeads} x ${c.headDim}`, mb(r.kvPer1k.f32), mb(r.kvPer1k.f16), mb(r.kvPer1k.webllm), mb(r.kvPer1k.transformersjs)];
    }),
  );
  return `${weights}\n${kv}`;
}
