import { InvalidRequestError } from '../../domain/errors.ts';
import type { ModelConfig } from '../../domain/model-config.ts';
import {
  EMBED_TOKENS,
  FINAL_NORM,
  LM_HEAD,
  layerPrefix,
  modelTensorSpecs,
  tensorElements,
} from '../../domain/model-tensors.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../../domain/half.ts';
import type { KvDtype } from '../../domain/model-cache-spec.ts';
import { ropeInvFreq } from '../../domain/rope.ts';
import { CpuKvCache } from './kv-cache.ts';
import { addInPlace, applyRope, argmax, attention, embeddingGather, linear, rmsNorm, swiglu } from './ops.ts';

/**
 * The CPU reference model: a straight, f32 transcription of HF's LlamaForCausalLM /
 * Qwen2ForCausalLM / Qwen3ForCausalLM forward pass over a dense per-sequence KV cache. It exists
 * to be obviously correct, as the oracle for the WebGPU backend, not to be fast.
 */

interface LayerWeights {
  readonly inputNorm: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly o: Float32Array;
  readonly qBias?: Float32Array;
  readonly kBias?: Float32Array;
  readonly vBias?: Float32Array;
  readonly oBias?: Float32Array;
  readonly qNorm?: Float32Array;
  readonly kNorm?: Float32Array;
  readonly postNorm: Float32Array;
  readonly gate: Float32Array;
  readonly up: Float32Array;
  readonly down: Float32Array;
}

export interface CpuModelOptions {
  /**
   * Storage of the KV cache: 'f32' (default) keeps K/V exact; 'f16' rounds each K and V value to
   * the nearest f16 before it is cached, as the GPU's f16 pool does, so the GPU can be checked
   * against it tightly.
   */
  readonly kvDtype?: KvDtype;
}

export interface ForwardOptions {
  /** Return logits for the last new position only ([1, vocab]) instead of every one ([n, vocab]). */
  readonly lastOnly?: boolean;
}

export interface GreedyOptions {
  /** Ids that stop generation (the EOS is kept in `tokens`). Defaults to the config's eos ids. */
  readonly eosTokenIds?: readonly number[];
}

export interface GreedyResult {
  /** The generated tokens, prompt excluded. */
  readonly tokens: number[];
  /** For each generated token, the logits row it was chosen from. */
  readonly logits: Float32Array[];
}

/** Look up every tensor the config needs, checking presence and element count. */
function validateWeights(config: ModelConfig, weights: ReadonlyMap<string, Float32Array>): void {
  for (const spec of modelTensorSpecs(config)) {
    const tensor = weights.get(spec.name);
    if (!tensor) {
      throw new InvalidRequestError(`missing tensor ${spec.name}`, { tensor: spec.name });
    }
    const expected = tensorElements(spec.shape);
    if (tensor.length !== expected) {
      throw new InvalidRequestError(
        `tensor ${spec.name} has ${tensor.length} elements, expected ${expected} for shape [${spec.shape.join(', ')}]`,
        { tensor: spec.name, length: tensor.length, shape: spec.shape },
      );
    }
  }
}

function layerWeights(config: ModelConfig, weights: ReadonlyMap<string, Float32Array>, layer: number): LayerWeights {
  const p = layerPrefix(layer);
  // validateWeights has run, so every name the config implies is present.
  const get = (name: string): Float32Array => weights.get(p + name) as Float32Array;
  const opt = (name: string, when: boolean): Float32Array | undefined => (when ? get(name) : undefined);
  return {
    inputNorm: get('input_layernorm.weight'),
    q: get('self_attn.q_proj.weight'),
    k: get('self_attn.k_proj.weight'),
    v: get('self_attn.v_proj.weight'),
    o: get('self_attn.o_proj.weight'),
    qBias: opt('self_attn.q_proj.bias', config.attentionBias),
    kBias: opt('self_attn.k_proj.bias', config.attentionBias),
    vBias: opt('self_attn.v_proj.bias', config.attentionBias),
    oBias: opt('self_attn.o_proj.bias', config.attentionOutputBias),
    qNorm: opt('self_attn.q_norm.weight', config.qkNorm),
    kNorm: opt('self_attn.k_norm.weight', config.qkNorm),
    postNorm: get('post_attention_layernorm.weight'),
    gate: get('mlp.gate_proj.weight'),
    up: get('mlp.up_proj.weight'),
    down: get('mlp.down_proj.weight'),
  };
}

export class CpuReferenceModel {
  readonly config: ModelConfig;
  private readonly embedTokens: Float32Array;
  private readonly layers: readonly LayerWeights[];
  private readonly finalNorm: Float32Array;
  private readonly lmHead: Float32Array;
  private readonly invFreq: Float32Array;
  private readonly kvDtype: KvDtype;

  constructor(config: ModelConfig, weights: ReadonlyMap<string, Float32Array>, options: CpuModelOptions = {}) {
    this.kvDtype = options.kvDtype ?? 'f32';
    validateWeights(config, weights);
    this.config = config;
    this.embedTokens = weights.get(EMBED_TOKENS) as Float32Array;
    this.layers = Array.from({ length: config.nLayers }, (_, i) => layerWeights(config, weights, i));
    this.finalNorm = weights.get(FINAL_NORM) as Float32Array;
    // HF ties by sharing the parameter, so a stray lm_head in a tied checkpoint is ignored.
    this.lmHead = config.tieWordEmbeddings ? this.embedTokens : (weights.get(LM_HEAD) as Float32Array);
    this.invFreq = ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
  }

  /** The output projection actually used ([vocab, hidden]); the embedding table when tied. */
  get lmHeadWeight(): Float32Array {
    return this.lmHead;
  }

  createCache(initialCapacity = 16): CpuKvCache {
    return new CpuKvCache(this.config.nLayers, this.config.nKvHeads, this.config.headDim, initialCapacity);
  }

  /**
   * Append `tokenIds` to the sequence in `cache` (at positions cache.length, ...) and return
   * their logits, [n, vocab] (or [1, vocab] with `lastOnly`). The cache advances only if the
   * whole pass succeeds.
   */
  forward(tokenIds: readonly number[], cache: CpuKvCache, options: ForwardOptions = {}): Float32Array {
    this.checkCache(cache);
    if (tokenIds.length === 0) throw new InvalidRequestError('forward needs at least one token');
    const start = cache.length;
    const positions = tokenIds.map((_, i) => start + i);
    const hidden = embeddingGather(this.embedTokens, this.config.hiddenSize, tokenIds);
    this.layers.forEach((layer, i) => {
      addInPlace(hidden, this.attentionBlock(layer, i, hidden, positions, cache));
      addInPlace(hidden, this.mlpBlock(layer, hidden));
    });
    cache.advance(tokenIds.length);
    const d = this.config.hiddenSize;
    const rows = options.lastOnly ? hidden.subarray(hidden.length - d) : hidden;
    return linear(rmsNorm(rows, this.finalNorm, this.config.rmsNormEps), this.lmHead, this.config.vocabSize);
  }

  /** Prefill the prompt, then pick the argmax one token per step until EOS or `maxNewTokens`. */
  generateGreedy(promptIds: readonly number[], maxNewTokens: number, options: GreedyOptions = {}): GreedyResult {
    if (promptIds.length === 0) throw new InvalidRequestError('generateGreedy needs a non-empty prompt');
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
      throw new InvalidRequestError('maxNewTokens must be a non-negative integer', { maxNewTokens });
    }
    const eos = new Set(options.eosTokenIds ?? this.config.eosTokenIds);
    const result: GreedyResult = { tokens: [], logits: [] };
    if (maxNewTokens === 0) return result;
    const cache = this.createCache(promptIds.length + maxNewTokens);
    let logits = this.forward(promptIds, cache, { lastOnly: true });
    for (;;) {
      const token = argmax(logits);
      result.tokens.push(token);
      result.logits.push(logits);
      if (eos.has(token) || result.tokens.length >= maxNewTokens) return result;
      logits = this.forward([token], cache, { lastOnly: true });
    }
  }

  private attentionBlock(
    layer: LayerWeights,
    index: number,
    hidden: Float32Array,
    positions: readonly number[],
    cache: CpuKvCache,
  ): Float32Array {
    const { nHeads, nKvHeads, headDim, rmsNormEps: eps, hiddenSize } = this.config;
    const x = rmsNorm(hidden, layer.inputNorm, eps);
    let q = linear(x, layer.q, nHeads * headDim, layer.qBias);
    let k = linear(x, layer.k, nKvHeads * headDim, layer.kBias);
    const v = linear(x, layer.v, nKvHeads * headDim, layer.vBias);
    // Qwen3 normalises each head over headDim before RoPE; rmsNorm's rows are then the heads.
    if (layer.qNorm) q = rmsNorm(q, layer.qNorm, eps);
    if (layer.kNorm) k = rmsNorm(k, layer.kNorm, eps);
    const nTokens = positions.length;
    applyRope(q, { nTokens, nHeads, headDim }, positions, this.invFreq);
    applyRope(k, { nTokens, nHeads: nKvHeads, headDim }, positions, this.invFreq);
    if (this.kvDtype === 'f16') cache.write(index, positions[0], f16ArrayToF32(f32ArrayToF16(k)), f16ArrayToF32(f32ArrayToF16(v)));
    else cache.write(index, positions[0], k, v);
    const attn = attention({
      q,
      positions,
      k: cache.keys(index),
      v: cache.values(index),
      kvLength: positions[0] + nTokens,
      nHeads,
      nKvHeads,
      headDim,
    });
    return linear(attn, layer.o, hiddenSize, layer.oBias);
  }

  private mlpBlock(layer: LayerWeights, hidden: Float32Array): Float32Array {
    const { intermediateSize: f, hiddenSize: d, rmsNormEps: eps } = this.config;
    const x = rmsNorm(hidden, layer.postNorm, eps);
    return linear(swiglu(linear(x, layer.gate, f), linear(x, layer.up, f)), layer.down, d);
  }

  private checkCache(cache: CpuKvCache): void {
    const { nLayers, nKvHeads, headDim } = this.config;
    if (cache.nLayers !== nLayers || cache.nKvHeads !== nKvHeads || cache.headDim !== headDim) {
      throw new InvalidRequestError('cache was created for a different model shape', {
        cache: [cache.nLayers, cache.nKvHeads, cache.headDim],
        model: [nLayers, nKvHeads, headDim],
      });
    }
  }
}
