import { InvalidRequestError } from '../../domain/errors.ts';
import { parseModelConfig, type ModelConfig } from '../../domain/model-config.ts';
import { assertTensorShapes } from '../../domain/model-tensors.ts';
import type { ModelFileSource } from '../../ports/outbound.ts';
import { readCheckpoint, readJsonFile, tensorToFloat32 } from '../safetensors/index.ts';
import { f16ArrayToF32, f32ArrayToF16 } from '../../domain/half.ts';
import { dequantizeBlocks, quantizeBlocks, BLOCK_LAYOUTS, type BlockQuant } from '../../domain/weight-blocks.ts';
import { CpuReferenceModel, type CpuModelOptions } from './cpu-model.ts';
import { mlxDequantize, mlxQuantization, planMlxLinears, type MlxLinear } from '../../domain/mlx-quant.ts';

/**
 * Load an HF model folder (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json) into the CPU reference model, every tensor widened to f32.
 */

/** One tensor of the checkpoint, widened to f32, with its shape from the file. */
export interface LoadedTensor {
  /** The checkpoint's dtype (F32, F16, BF16, ...). */
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface LoadedCpuModel {
  readonly config: ModelConfig;
  readonly model: CpuReferenceModel;
}

/**
 * Every tensor of every weight file, converted to f32, keyed by HF name. An MLX quantized
 * checkpoint (config.json's `quantization`) has each quantized linear's X.weight, X.scales and
 * X.biases replaced by X.weight dequantized (dtype 'MLX<bits>').
 */
export async function loadWeights(source: ModelFileSource): Promise<Map<string, LoadedTensor>> {
  const out = new Map<string, LoadedTensor>();
  const { tensors } = await readCheckpoint(source);
  const mlx = (await source.has('config.json')) ? mlxQuantization(await readJsonFile(source, 'config.json')) : undefined;
  const linears = mlx === undefined ? new Map<string, MlxLinear>() : planMlxLinears(mlx, tensors);
  const sides = new Set([...linears.values()].flatMap((l) => [l.scales, l.biases]));
  for (const [name, entry] of tensors) {
    const l = linears.get(name);
    if (sides.has(name)) continue;
    if (l === undefined) {
      out.set(name, { dtype: entry.dtype, shape: entry.shape, data: tensorToFloat32(entry) });
      continue;
    }
    const side = (n: string): Uint8Array => (tensors.get(n) as { data: Uint8Array }).data;
    out.set(name, { dtype: `MLX${l.bits}`, shape: [l.rows, l.cols], data: mlxDequantize(l, entry.data, side(l.scales), side(l.biases)) });
  }
  return out;
}

export async function loadModelConfig(source: ModelFileSource): Promise<ModelConfig> {
  return parseModelConfig(await readJsonFile(source, 'config.json'));
}

export interface CpuLoadOptions extends CpuModelOptions {
  /**
   * Run on the values the GPU decodes from weights quantized at load (its `weights` option):
   * every matrix quantized to `q8`/`q4` blocks and dequantized back. A matrix whose rows are not
   * whole 32-element blocks is rounded to the 16-bit storage the GPU then keeps (f16 for an f32
   * checkpoint; F16/BF16 values are exact already).
   */
  readonly weights?: BlockQuant;
}

function asGpuDecodes(t: LoadedTensor, quant: BlockQuant): Float32Array {
  if (t.shape.length !== 2) return t.data;
  const cols = t.shape[1];
  if (cols % BLOCK_LAYOUTS[quant].blockElements === 0) return dequantizeBlocks(quant, quantizeBlocks(quant, t.data, cols), t.data.length);
  return t.dtype === 'F32' && cols % 2 === 0 ? f16ArrayToF32(f32ArrayToF16(t.data)) : t.data;
}

export async function loadCpuModel(source: ModelFileSource, options: CpuLoadOptions = {}): Promise<LoadedCpuModel> {
  const config = await loadModelConfig(source);
  const tensors = await loadWeights(source);
  assertTensorShapes(config, tensors);
  const weights = new Map<string, Float32Array>();
  const quant = options.weights;
  if (quant !== undefined && [...tensors.values()].some((t) => t.dtype.startsWith('MLX'))) {
    throw new InvalidRequestError('weights does not apply to an MLX quantized checkpoint: its matrices keep their groups', { weights: quant });
  }
  for (const [name, t] of tensors) weights.set(name, quant ? asGpuDecodes(t, quant) : t.data);
  return { config, model: new CpuReferenceModel(config, weights, { kvDtype: options.kvDtype }) };
}
