import { InvalidRequestError } from '../../domain/errors.ts';
import { f32ArrayToF16 } from '../../domain/half.ts';
import type { ModelConfig } from '../../domain/model-config.ts';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, assertTensorShapes, layerPrefix, modelTensorSpecs } from '../../domain/model-tensors.ts';
import { tensorToFloat32, typedView, type TensorEntry } from '../safetensors/index.ts';
import type { GpuBuffers } from './gpu-buffers.ts';
import { BYTES_PER_ELEMENT, rowsPerPart, type GpuDtype, type GpuTensor, type GpuTensorPart } from './gpu-tensor.ts';

/**
 * Checkpoint tensors in GPU buffers. Matrices keep F16 as packed f16 (read with
 * unpack2x16float); F32 stays f32; BF16 is widened to f32 (exact; WGSL has no bf16). Vectors
 * (norms, biases) are always f32: they are tiny and read once per row. A matrix larger than the
 * storage binding limit (the device's, or `maxBindingBytes`) is split by rows into parts that
 * each fit (GpuTensor.parts); matmul and embedding give bitwise the unsplit results on them.
 */
export interface GpuLayerWeights {
  readonly inputNorm: GPUBuffer;
  readonly q: GpuTensor;
  readonly k: GpuTensor;
  readonly v: GpuTensor;
  readonly o: GpuTensor;
  readonly qBias?: GPUBuffer;
  readonly kBias?: GPUBuffer;
  readonly vBias?: GPUBuffer;
  readonly oBias?: GPUBuffer;
  readonly qNorm?: GPUBuffer;
  readonly kNorm?: GPUBuffer;
  readonly postNorm: GPUBuffer;
  readonly gate: GpuTensor;
  readonly up: GpuTensor;
  readonly down: GpuTensor;
}

export interface GpuModelWeights {
  readonly embed: GpuTensor;
  readonly layers: readonly GpuLayerWeights[];
  readonly finalNorm: GPUBuffer;
  readonly lmHead: GpuTensor;
  readonly bytes: number;
}

export interface UploadOptions {
  /** Force the storage of matrices: 'f16' packs f32 checkpoints too (halves memory). */
  readonly matrixDtype?: GpuDtype;
  /**
   * Cap on the bytes of one weight binding, below the device's maxStorageBufferBindingSize (for
   * tests, which force small limits to exercise splitting). A matrix larger than the limit is
   * split by rows into parts that each fit (see GpuTensor.parts).
   */
  readonly maxBindingBytes?: number;
}

class Uploader {
  bytes = 0;
  constructor(
    private readonly buffers: GpuBuffers,
    private readonly tensors: ReadonlyMap<string, TensorEntry>,
    private readonly maxBinding: number,
    private readonly options: UploadOptions,
  ) {}

  entry(name: string): TensorEntry {
    const e = this.tensors.get(name);
    if (!e) throw new InvalidRequestError(`checkpoint has no tensor ${name}`, { tensor: name });
    return e;
  }

  vector(name: string): GPUBuffer {
    const data = tensorToFloat32(this.entry(name));
    this.bytes += data.byteLength;
    return this.buffers.upload(`weight:${name}`, data);
  }

  optionalVector(name: string): GPUBuffer | undefined {
    return this.tensors.has(name) ? this.vector(name) : undefined;
  }

  matrix(name: string): GpuTensor {
    const e = this.entry(name);
    const wantF16 = this.options.matrixDtype === 'f16' || (this.options.matrixDtype === undefined && e.dtype === 'F16');
    const cols = e.shape[e.shape.length - 1];
    if (wantF16 && cols % 2 !== 0) throw new InvalidRequestError(`f16 matrix ${name} needs an even row length`, { tensor: name, cols });
    const data: Uint16Array | Float32Array = wantF16 ? (e.dtype === 'F16' ? (typedView(e) as Uint16Array) : f32ArrayToF16(tensorToFloat32(e))) : tensorToFloat32(e);
    const dtype: GpuDtype = wantF16 ? 'f16' : 'f32';
    this.bytes += data.byteLength;
    const rows = e.shape.length === 2 ? e.shape[0] : 1;
    const perPart = rowsPerPart(rows, data.length / rows, dtype, this.maxBinding);
    if (perPart >= rows) return { buffer: this.buffers.upload(`weight:${name}`, data), dtype, shape: e.shape };
    const rowElements = data.length / rows;
    const parts: GpuTensorPart[] = [];
    for (let rowStart = 0; rowStart < rows; rowStart += perPart) {
      const n = Math.min(perPart, rows - rowStart);
      const slice = data.subarray(rowStart * rowElements, (rowStart + n) * rowElements);
      parts.push({ buffer: this.buffers.upload(`weight:${name}:rows${rowStart}+${n}`, slice), rowStart, rows: n });
    }
    return { buffer: parts[0].buffer, dtype, shape: e.shape, parts };
  }
}

function uploadLayer(u: Uploader, config: ModelConfig, i: number): GpuLayerWeights {
  const p = layerPrefix(i);
  const a = `${p}self_attn.`;
  return {
    inputNorm: u.vector(`${p}input_layernorm.weight`),
    q: u.matrix(`${a}q_proj.weight`),
    k: u.matrix(`${a}k_proj.weight`),
    v: u.matrix(`${a}v_proj.weight`),
    o: u.matrix(`${a}o_proj.weight`),
    qBias: config.attentionBias ? u.vector(`${a}q_proj.bias`) : undefined,
    kBias: config.attentionBias ? u.vector(`${a}k_proj.bias`) : undefined,
    vBias: config.attentionBias ? u.vector(`${a}v_proj.bias`) : undefined,
    oBias: config.attentionOutputBias ? u.optionalVector(`${a}o_proj.bias`) : undefined,
    qNorm: config.qkNorm ? u.vector(`${a}q_norm.weight`) : undefined,
    kNorm: config.qkNorm ? u.vector(`${a}k_norm.weight`) : undefined,
    postNorm: u.vector(`${p}post_attention_layernorm.weight`),
    gate: u.matrix(`${p}mlp.gate_proj.weight`),
    up: u.matrix(`${p}mlp.up_proj.weight`),
    down: u.matrix(`${p}mlp.down_proj.weight`),
  };
}

/** Validate every tensor against the config, then upload. Nothing is allocated for a bad checkpoint. */
export function uploadWeights(
  buffers: GpuBuffers,
  maxBinding: number,
  config: ModelConfig,
  tensors: ReadonlyMap<string, TensorEntry>,
  options: UploadOptions = {},
): GpuModelWeights {
  for (const spec of modelTensorSpecs(config)) {
    if (!tensors.has(spec.name)) throw new InvalidRequestError(`checkpoint has no tensor ${spec.name}`, { tensor: spec.name });
  }
  assertTensorShapes(config, tensors);
  const limit = options.maxBindingBytes === undefined ? maxBinding : Math.min(maxBinding, options.maxBindingBytes);
  if (!Number.isFinite(limit) || limit < BYTES_PER_ELEMENT.f32) {
    throw new InvalidRequestError(`maxBindingBytes must be a positive number of bytes`, { maxBindingBytes: options.maxBindingBytes });
  }
  const u = new Uploader(buffers, tensors, limit, options);
  const embed = u.matrix(EMBED_TOKENS);
  const layers = Array.from({ length: config.nLayers }, (_, i) => uploadLayer(u, config, i));
  const finalNorm = u.vector(FINAL_NORM);
  const lmHead = config.tieWordEmbeddings ? embed : u.matrix(LM_HEAD);
  return { embed, layers, finalNorm, lmHead, bytes: u.bytes };
}
