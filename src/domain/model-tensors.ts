import { InvalidRequestError } from './errors.ts';
import type { ModelConfig } from './model-config.ts';

/**
 * The Hugging Face tensor names and shapes a Llama-family checkpoint must hold, derived from its
 * config. Every backend validates its weights against this one list before it allocates anything.
 * Linear weights keep the HF layout [out, in].
 */

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

export const EMBED_TOKENS = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

export function layerPrefix(layer: number): string {
  return `model.layers.${layer}.`;
}

export function tensorElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function attentionTensors(config: ModelConfig, p: string): TensorSpec[] {
  const { hiddenSize: d, nHeads, nKvHeads, headDim } = config;
  const qOut = nHeads * headDim;
  const kvOut = nKvHeads * headDim;
  const specs: TensorSpec[] = [
    { name: `${p}self_attn.q_proj.weight`, shape: [qOut, d] },
    { name: `${p}self_attn.k_proj.weight`, shape: [kvOut, d] },
    { name: `${p}self_attn.v_proj.weight`, shape: [kvOut, d] },
    { name: `${p}self_attn.o_proj.weight`, shape: [d, qOut] },
  ];
  if (config.attentionBias) {
    specs.push(
      { name: `${p}self_attn.q_proj.bias`, shape: [qOut] },
      { name: `${p}self_attn.k_proj.bias`, shape: [kvOut] },
      { name: `${p}self_attn.v_proj.bias`, shape: [kvOut] },
    );
  }
  if (config.attentionOutputBias) specs.push({ name: `${p}self_attn.o_proj.bias`, shape: [d] });
  if (config.qkNorm) {
    specs.push(
      { name: `${p}self_attn.q_norm.weight`, shape: [headDim] },
      { name: `${p}self_attn.k_norm.weight`, shape: [headDim] },
    );
  }
  return specs;
}

/** The tensors of decoder layer `layer`. */
export function layerTensorSpecs(config: ModelConfig, layer: number): TensorSpec[] {
  const p = layerPrefix(layer);
  const { hiddenSize: d, intermediateSize: f } = config;
  return [
    { name: `${p}input_layernorm.weight`, shape: [d] },
    ...attentionTensors(config, p),
    { name: `${p}post_attention_layernorm.weight`, shape: [d] },
    { name: `${p}mlp.gate_proj.weight`, shape: [f, d] },
    { name: `${p}mlp.up_proj.weight`, shape: [f, d] },
    { name: `${p}mlp.down_proj.weight`, shape: [d, f] },
  ];
}

/**
 * Every tensor the model reads. With tied embeddings `lm_head.weight` is not required (the
 * embedding table is reused), though a checkpoint may still carry a copy.
 */
export function modelTensorSpecs(config: ModelConfig): TensorSpec[] {
  const specs: TensorSpec[] = [{ name: EMBED_TOKENS, shape: [config.vocabSize, config.hiddenSize] }];
  for (let i = 0; i < config.nLayers; i++) specs.push(...layerTensorSpecs(config, i));
  specs.push({ name: FINAL_NORM, shape: [config.hiddenSize] });
  if (!config.tieWordEmbeddings) specs.push({ name: LM_HEAD, shape: [config.vocabSize, config.hiddenSize] });
  return specs;
}

/**
 * Element counts alone would accept a transposed weight; the file's shapes catch it. Tensors
 * absent from `found` are left to the caller, which names missing tensors itself.
 */
export function assertTensorShapes(config: ModelConfig, found: ReadonlyMap<string, { readonly shape: readonly number[] }>): void {
  for (const spec of modelTensorSpecs(config)) {
    const tensor = found.get(spec.name);
    if (!tensor) continue;
    const same = tensor.shape.length === spec.shape.length && tensor.shape.every((d, i) => d === spec.shape[i]);
    if (!same) {
      throw new InvalidRequestError(
        `tensor ${spec.name} has shape [${tensor.shape.join(', ')}], expected [${spec.shape.join(', ')}]`,
        { tensor: spec.name, shape: tensor.shape, expected: spec.shape },
      );
    }
  }
}
