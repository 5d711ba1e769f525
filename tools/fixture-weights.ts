/**
 * Random weights for a fixture, named and laid out as Hugging Face checkpoints are (Linear
 * weights [out, in]). Scales keep activations O(1) so a forward pass is not degenerate:
 * embeddings N(0, 1) (N(0, 0.1²) when tied to the lm_head), linears N(0, 1/fan_in), RMSNorm weights 1 + N(0, 0.1²) (so a norm weight
 * that a backend forgets to apply changes the output), biases N(0, 0.1²).
 */
import type { TensorInput } from '../src/adapters/safetensors/index.ts';
import { f32ArrayToBf16, f32ArrayToF16 } from '../src/domain/half.ts';
import { fnv1a32, normals } from './prng.ts';
import type { WeightDtype } from './fixture-specs.ts';
import type { Json } from './tokenizer-json.ts';

/** Bump to change every fixture's weights at once. */
export const WEIGHT_SEED = 0x5eed2024;

export interface Shape {
  readonly vocab: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly qkvBias: boolean;
  readonly qkNorm: boolean;
  readonly tied: boolean;
}

function num(config: Readonly<Record<string, Json>>, key: string): number {
  const value = config[key];
  if (typeof value !== 'number') throw new Error(`config.${key} must be a number`);
  return value;
}

export function shapeOf(config: Readonly<Record<string, Json>>): Shape {
  const hidden = num(config, 'hidden_size');
  const heads = num(config, 'num_attention_heads');
  const modelType = config['model_type'];
  return {
    vocab: num(config, 'vocab_size'),
    hidden,
    intermediate: num(config, 'intermediate_size'),
    layers: num(config, 'num_hidden_layers'),
    heads,
    kvHeads: num(config, 'num_key_value_heads'),
    headDim: typeof config['head_dim'] === 'number' ? config['head_dim'] : hidden / heads,
    qkvBias: modelType === 'qwen2' || config['attention_bias'] === true,
    qkNorm: modelType === 'qwen3',
    tied: config['tie_word_embeddings'] === true,
  };
}

export interface Init {
  readonly mean: number;
  readonly std: number;
}

const EMBEDDING: Init = { mean: 0, std: 1 };
// A tied lm_head scores each token by its own embedding; at std 1 the current token's embedding
// dominates the residual stream and greedy decoding repeats the last token forever. At 0.1 the
// layers' outputs dominate and greedy output varies, which the parity tests need.
const TIED_EMBEDDING: Init = { mean: 0, std: 0.1 };
const NORM: Init = { mean: 1, std: 0.1 };
const BIAS: Init = { mean: 0, std: 0.1 };
const linear = (fanIn: number): Init => ({ mean: 0, std: 1 / Math.sqrt(fanIn) });

/** Every tensor of the model with its shape and initialisation, in HF naming. */
export function tensorPlan(s: Shape): Array<[string, number[], Init]> {
  const plan: Array<[string, number[], Init]> = [
    ['model.embed_tokens.weight', [s.vocab, s.hidden], s.tied ? TIED_EMBEDDING : EMBEDDING],
  ];
  const qDim = s.heads * s.headDim;
  const kvDim = s.kvHeads * s.headDim;
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    plan.push([`${p}input_layernorm.weight`, [s.hidden], NORM]);
    plan.push([`${p}self_attn.q_proj.weight`, [qDim, s.hidden], linear(s.hidden)]);
    plan.push([`${p}self_attn.k_proj.weight`, [kvDim, s.hidden], linear(s.hidden)]);
    plan.push([`${p}self_attn.v_proj.weight`, [kvDim, s.hidden], linear(s.hidden)]);
    if (s.qkvBias) {
      plan.push([`${p}self_attn.q_proj.bias`, [qDim], BIAS]);
      plan.push([`${p}self_attn.k_proj.bias`, [kvDim], BIAS]);
      plan.push([`${p}self_attn.v_proj.bias`, [kvDim], BIAS]);
    }
    if (s.qkNorm) {
      plan.push([`${p}self_attn.q_norm.weight`, [s.headDim], NORM]);
      plan.push([`${p}self_attn.k_norm.weight`, [s.headDim], NORM]);
    }
    plan.push([`${p}self_attn.o_proj.weight`, [s.hidden, qDim], linear(qDim)]);
    plan.push([`${p}post_attention_layernorm.weight`, [s.hidden], NORM]);
    plan.push([`${p}mlp.gate_proj.weight`, [s.intermediate, s.hidden], linear(s.hidden)]);
    plan.push([`${p}mlp.up_proj.weight`, [s.intermediate, s.hidden], linear(s.hidden)]);
    plan.push([`${p}mlp.down_proj.weight`, [s.hidden, s.intermediate], linear(s.intermediate)]);
  }
  plan.push(['model.norm.weight', [s.hidden], NORM]);
  if (!s.tied) plan.push(['lm_head.weight', [s.vocab, s.hidden], linear(s.hidden)]);
  return plan;
}

function encode(values: Float32Array, dtype: WeightDtype): ArrayBufferView {
  if (dtype === 'F16') return f32ArrayToF16(values);
  if (dtype === 'BF16') return f32ArrayToBf16(values);
  return values;
}

/** The model's tensors, ready for `serializeSafetensors`. `modelId` seeds each tensor's stream. */
export function fixtureTensors(
  modelId: string,
  config: Readonly<Record<string, Json>>,
  dtype: WeightDtype,
): Record<string, TensorInput> {
  const tensors: Record<string, TensorInput> = {};
  for (const [name, shape, init] of tensorPlan(shapeOf(config))) {
    const count = shape.reduce((a, b) => a * b, 1);
    const seed = (WEIGHT_SEED ^ fnv1a32(`${modelId}/${name}`)) >>> 0;
    const values = normals(seed, count, init.mean, init.std);
    tensors[name] = { dtype, shape, data: encode(values, dtype) };
  }
  return tensors;
}
