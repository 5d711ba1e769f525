import { InvalidRequestError, UnsupportedTensorTypeError } from '../../domain/errors.ts';
import { f32ArrayToBf16, f32ArrayToF16 } from '../../domain/half.ts';
import type { ModelConfig } from '../../domain/model-config.ts';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, assertTensorShapes, layerPrefix, modelTensorSpecs } from '../../domain/model-tensors.ts';
import { quantizeBlocks } from '../../domain/weight-blocks.ts';
import { tensorToFloat32, typedView, type TensorEntry } from '../safetensors/index.ts';
import type { GpuBuffers } from './gpu-buffers.ts';
import { rowsPerPart, type GpuTensor, type GpuTensorPart } from './gpu-tensor.ts';
import { fitsFormat, formatBytes, gpuDtypeOfGgml, type GpuDtype } from './weight-formats.ts';

/**
 * Checkpoint tensors in GPU buffers. Matrices (embedding and lm_head included) keep the
 * checkpoint's width: F16 and BF16 stay 2 bytes per weight (packed halves, widened in the
 * kernels' w_at), F32 stays f32; or, with `weights: 'q8' | 'q4'`, they are quantized here at load
 * into 32-element blocks with an f16 scale (domain/weight-blocks.ts) that the kernels decode in
 * registers. Vectors (norms, biases) are always f32: they are tiny and read once per row. A tied
 * lm_head is the embedding tensor itself (one copy). A matrix larger than the storage binding
 * limit (the device's, or `maxBindingBytes`) is split by rows into parts that each fit
 * (GpuTensor.parts); matmul and embedding give bitwise the unsplit results on them.
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
  /** Bytes of every weight buffer on the GPU. */
  readonly bytes: number;
  /** Bytes the same tensors take in the checkpoint file (what `bytes` is compared against). */
  readonly checkpointBytes: number;
  /** GPU bytes by storage format (matrices) and 'vector' (f32 norms and biases). */
  readonly bytesByFormat: Readonly<Record<string, number>>;
}

/** Weight quantization at load: group-wise symmetric int8 / int4, 32 per group, f16 scales. */
export type WeightQuantization = 'q8' | 'q4';

export interface UploadOptions {
  /** Force the storage of matrices: 'f16' packs f32 checkpoints too (halves memory). */
  readonly matrixDtype?: GpuDtype;
  /**
   * Quantize every matrix at load (embedding and lm_head included). A matrix whose rows are not
   * a whole number of 32-element groups keeps its 16-bit (or f32) storage.
   */
  readonly weights?: WeightQuantization;
  /**
   * Cap on the bytes of one weight binding, below the device's maxStorageBufferBindingSize (for
   * tests, which force small limits to exercise splitting). A matrix larger than the limit is
   * split by rows into parts that each fit (see GpuTensor.parts).
   */
  readonly maxBindingBytes?: number;
}

/** The GPU format a checkpoint dtype keeps when nothing else is asked for. */
function nativeFormat(dtype: string): GpuDtype {
  if (dtype === 'F16') return 'f16';
  if (dtype === 'BF16') return 'bf16';
  return 'f32';
}

/** A matrix already in a ggml block layout (a GGUF weight, `data` its bytes): uploaded as is. */
export interface BlockTensorEntry extends TensorEntry {
  readonly ggmlType: string;
}

function keptBlockFormat(e: TensorEntry, name: string): GpuDtype | undefined {
  if (!('ggmlType' in e) || typeof e.ggmlType !== 'string') return undefined;
  const dtype = gpuDtypeOfGgml(e.ggmlType);
  if (dtype === undefined) throw new UnsupportedTensorTypeError(`tensor ${name} has type ${e.ggmlType}, which the GPU kernels cannot read`, { tensor: name, type: e.ggmlType });
  return dtype;
}

/** The tensor's elements in `dtype`, as bytes; a view of the file when no conversion is needed. */
function encodeMatrix(e: TensorEntry, dtype: GpuDtype, cols: number): Uint8Array {
  if ('ggmlType' in e) return e.data;
  const bytes = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  switch (dtype) {
    case 'f32':
      return bytes(tensorToFloat32(e));
    case 'f16':
      return bytes(e.dtype === 'F16' ? typedView({ dtype: 'F16', data: e.data }) : f32ArrayToF16(tensorToFloat32(e)));
    case 'bf16':
      return bytes(e.dtype === 'BF16' ? typedView({ dtype: 'BF16', data: e.data }) : f32ArrayToBf16(tensorToFloat32(e)));
    case 'q8':
    case 'q4':
      return quantizeBlocks(dtype, tensorToFloat32(e), cols);
    default:
      throw new InvalidRequestError(`${dtype} weights are only loaded from files that store them`, { dtype });
  }
}

class Uploader {
  bytes = 0;
  checkpointBytes = 0;
  readonly byFormat: Record<string, number> = {};
  constructor(
    private readonly buffers: GpuBuffers,
    private readonly tensors: ReadonlyMap<string, TensorEntry>,
    private readonly maxBinding: number,
    private readonly options: UploadOptions,
  ) {}

  entry(name: string): TensorEntry {
    const e = this.tensors.get(name);
    if (!e) throw new InvalidRequestError(`checkpoint has no tensor ${name}`, { tensor: name });
    this.checkpointBytes += e.data.byteLength;
    return e;
  }

  vector(name: string): GPUBuffer {
    const data = tensorToFloat32(this.entry(name));
    this.count('vector', data.byteLength);
    return this.buffers.upload(`weight:${name}`, data, undefined, 'weights');
  }

  optionalVector(name: string): GPUBuffer | undefined {
    return this.tensors.has(name) ? this.vector(name) : undefined;
  }

  /** The format a matrix is stored in: the quantization asked for, else the forced or native width. */
  format(e: TensorEntry, name: string, cols: number): GpuDtype {
    const kept = keptBlockFormat(e, name);
    if (kept !== undefined) return kept;
    const { weights, matrixDtype } = this.options;
    const wanted = weights ?? matrixDtype ?? nativeFormat(e.dtype);
    if (fitsFormat(wanted, cols)) return wanted;
    if (matrixDtype && !weights) throw new InvalidRequestError(`${wanted} matrix ${name} needs an even row length`, { tensor: name, cols });
    // Rows that are not whole blocks (or an odd 16-bit row): the narrowest format that fits,
    // 16-bit when quantizing (the CPU reference mirrors this in cpu/load.ts), else f32 (exact).
    const sixteen: GpuDtype = e.dtype === 'BF16' ? 'bf16' : 'f16';
    return weights && fitsFormat(sixteen, cols) ? sixteen : 'f32';
  }

  matrix(name: string): GpuTensor {
    const e = this.entry(name);
    const rows = e.shape.length === 2 ? e.shape[0] : 1;
    const cols = e.shape[e.shape.length - 1];
    const dtype = this.format(e, name, cols);
    const data = encodeMatrix(e, dtype, cols);
    this.count(dtype, data.byteLength);
    const perPart = rowsPerPart(rows, cols, dtype, this.maxBinding);
    if (perPart >= rows) return { buffer: this.buffers.upload(`weight:${name}:${dtype}`, data, undefined, 'weights'), dtype, shape: e.shape };
    const rowBytes = formatBytes(dtype, 1, cols);
    const parts: GpuTensorPart[] = [];
    for (let rowStart = 0; rowStart < rows; rowStart += perPart) {
      const n = Math.min(perPart, rows - rowStart);
      const slice = data.subarray(rowStart * rowBytes, (rowStart + n) * rowBytes);
      parts.push({ buffer: this.buffers.upload(`weight:${name}:${dtype}:rows${rowStart}+${n}`, slice, undefined, 'weights'), rowStart, rows: n });
    }
    return { buffer: parts[0].buffer, dtype, shape: e.shape, parts };
  }

  private count(format: string, bytes: number): void {
    this.bytes += bytes;
    this.byFormat[format] = (this.byFormat[format] ?? 0) + bytes;
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
  if (!Number.isFinite(limit) || limit < 4) {
    throw new InvalidRequestError(`maxBindingBytes must be a positive number of bytes`, { maxBindingBytes: options.maxBindingBytes });
  }
  const u = new Uploader(buffers, tensors, limit, options);
  const embed = u.matrix(EMBED_TOKENS);
  const layers = Array.from({ length: config.nLayers }, (_, i) => uploadLayer(u, config, i));
  const finalNorm = u.vector(FINAL_NORM);
  const lmHead = config.tieWordEmbeddings ? embed : u.matrix(LM_HEAD);
  return { embed, layers, finalNorm, lmHead, bytes: u.bytes, checkpointBytes: u.checkpointBytes, bytesByFormat: { ...u.byFormat } };
}
