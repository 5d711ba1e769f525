import { InvalidRequestError, UnsupportedTensorTypeError } from '../../domain/errors.ts';
import { f32ArrayToBf16, f32ArrayToF16 } from '../../domain/half.ts';
import type { ModelConfig } from '../../domain/model-config.ts';
import { EMBED_TOKENS, FINAL_NORM, LM_HEAD, assertTensorShapes, layerPrefix, modelTensorSpecs } from '../../domain/model-tensors.ts';
import { STORAGE_RW } from './usage.ts';
import { quantizeBlocks } from '../../domain/weight-blocks.ts';
import { tensorToFloat32, typedView, type CheckpointConsumer, type StreamedTensor, type TensorEntry, type TensorHeader } from '../safetensors/index.ts';
import type { GpuBuffers } from './gpu-buffers.ts';
import { rowsPerPart, type GpuTensor, type GpuTensorPart } from './gpu-tensor.ts';
import { fitsFormat, formatBytes, gpuDtypeOfGgml, isGpuDtype, type GpuDtype } from './weight-formats.ts';

/**
 * Checkpoint tensors in GPU buffers. Matrices (embedding and lm_head included) keep the
 * checkpoint's width: F16 and BF16 stay 2 bytes per weight (packed halves, widened in the
 * kernels' w_at), F32 stays f32; or, with `weights: 'q8' | 'q4'`, they are quantized here at load
 * into 32-element blocks with an f16 scale (domain/weight-blocks.ts) that the kernels decode in
 * registers. Vectors (norms, biases) are always f32: they are tiny and read once per row. A tied
 * lm_head is the embedding tensor itself (one copy). A matrix larger than the storage binding
 * limit (the device's, or `maxBindingBytes`) is split by rows into parts that each fit
 * (GpuTensor.parts); matmul and embedding give bitwise the unsplit results on them. Tensors
 * arrive streamed (WeightLoader) and go to the GPU in row chunks: the host never holds a file.
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
   * Cap on the bytes of one storage binding, below the device's maxStorageBufferBindingSize (for
   * tests, which force small limits to exercise splitting: Dawn rounds a requested device limit
   * up to 128 MiB). A matrix larger than the limit is split by rows into parts that each fit
   * (see GpuTensor.parts).
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

/**
 * The GPU format of a tensor that arrives already in a block layout (kept as is), if it is one:
 * a ggml type (GGUF), or a GPU format named directly (MLX affine groups, see mlx-weights.ts).
 */
function keptBlockFormat(t: { readonly ggmlType?: unknown; readonly blockDtype?: unknown }, name: string): GpuDtype | undefined {
  if (isGpuDtype(t.blockDtype)) return t.blockDtype;
  if (typeof t.ggmlType !== 'string') return undefined;
  const dtype = gpuDtypeOfGgml(t.ggmlType);
  if (dtype === undefined) throw new UnsupportedTensorTypeError(`tensor ${name} has type ${t.ggmlType}, which the GPU kernels cannot read`, { tensor: name, type: t.ggmlType });
  return dtype;
}

/** Rows of `dtype`'s elements as bytes; a view of the input when no conversion is needed. */
function encodeRows(e: Pick<TensorEntry, 'dtype' | 'data'>, dtype: GpuDtype, cols: number): Uint8Array {
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

/**
 * Input bytes encoded per write: the host holds one such chunk (and its encoding) of a tensor at
 * a time, whatever the tensor's size, which bounds a load's host memory.
 */
const CHUNK_BYTES = 4 << 20;
/** Bytes written between waits for the queue, so the driver's staging copies of writes are freed. */
const FLUSH_BYTES = 8 << 20;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * A streamed tensor; `ggmlType` marks a matrix in a ggml block layout (GGUF), `blockDtype` one
 * already in a GPU block format (MLX groups): either is kept byte for byte.
 */
export type LoadedTensor = StreamedTensor & { readonly ggmlType?: string; readonly blockDtype?: GpuDtype };

/**
 * Receives the checkpoint's tensors as they stream in (CheckpointConsumer) and writes each to
 * its GPU buffers in row chunks: a matrix is encoded (16-bit kept, f32 narrowed, or quantized;
 * rows are independent in every format, so chunking changes no byte) CHUNK_BYTES of input at a
 * time. Tensors the model does not use are left unread (skipped). `finish` assembles the model.
 */
export class WeightLoader implements CheckpointConsumer {
  private readonly matrices = new Map<string, GpuTensor>();
  private readonly vectors = new Map<string, GPUBuffer>();
  private readonly wanted = new Map<string, 'matrix' | 'vector'>();
  private readonly limit: number;
  private bytes = 0;
  private checkpointBytes = 0;
  private unflushed = 0;
  private readonly byFormat: Record<string, number> = {};

  constructor(
    private readonly buffers: GpuBuffers,
    maxBinding: number,
    private readonly config: ModelConfig,
    private readonly options: UploadOptions = {},
  ) {
    this.limit = options.maxBindingBytes === undefined ? maxBinding : Math.min(maxBinding, options.maxBindingBytes);
    if (!Number.isFinite(this.limit) || this.limit < 4) {
      throw new InvalidRequestError(`maxBindingBytes must be a positive number of bytes`, { maxBindingBytes: options.maxBindingBytes });
    }
    for (const spec of modelTensorSpecs(config)) this.wanted.set(spec.name, spec.shape.length === 2 ? 'matrix' : 'vector');
  }

  /** Validate every tensor against the config: nothing is allocated for a bad checkpoint. */
  begin(tensors: ReadonlyMap<string, TensorHeader>): void {
    for (const name of this.wanted.keys()) {
      if (!tensors.has(name)) throw new InvalidRequestError(`checkpoint has no tensor ${name}`, { tensor: name });
    }
    assertTensorShapes(this.config, tensors);
  }

  async tensor(t: LoadedTensor): Promise<void> {
    const kind = this.wanted.get(t.name);
    if (!kind) return;
    this.checkpointBytes += t.byteLength;
    if (kind === 'vector') {
      const data = tensorToFloat32({ dtype: t.dtype, data: await t.read(t.byteLength) });
      this.count('vector', data.byteLength);
      this.vectors.set(t.name, this.buffers.upload(`weight:${t.name}`, data, undefined, 'weights'));
    } else {
      this.matrices.set(t.name, await this.matrix(t));
    }
  }

  finish(): GpuModelWeights {
    const embed = this.matrix_(EMBED_TOKENS);
    const layers = Array.from({ length: this.config.nLayers }, (_, i) => this.layer(i));
    const lmHead = this.config.tieWordEmbeddings ? embed : this.matrix_(LM_HEAD);
    return { embed, layers, finalNorm: this.vector_(FINAL_NORM), lmHead, bytes: this.bytes, checkpointBytes: this.checkpointBytes, bytesByFormat: { ...this.byFormat } };
  }

  /** The format a matrix is stored in: the quantization asked for, else the forced or native width. */
  private format(t: { readonly dtype: string; readonly ggmlType?: unknown; readonly blockDtype?: unknown }, name: string, cols: number): GpuDtype {
    const kept = keptBlockFormat(t, name);
    if (kept !== undefined) return kept;
    const dtype = t.dtype;
    const { weights, matrixDtype } = this.options;
    const wanted = weights ?? matrixDtype ?? nativeFormat(dtype);
    if (fitsFormat(wanted, cols)) return wanted;
    if (matrixDtype && !weights) throw new InvalidRequestError(`${wanted} matrix ${name} needs an even row length`, { tensor: name, cols });
    // Rows that are not whole blocks (or an odd 16-bit row): the narrowest format that fits,
    // 16-bit when quantizing (the CPU reference mirrors this in cpu/load.ts), else f32 (exact).
    const sixteen: GpuDtype = dtype === 'BF16' ? 'bf16' : 'f16';
    return weights && fitsFormat(sixteen, cols) ? sixteen : 'f32';
  }

  private async matrix(t: LoadedTensor): Promise<GpuTensor> {
    const [rows, cols] = t.shape;
    const dtype = this.format(t, t.name, cols);
    const kept = keptBlockFormat(t, t.name) !== undefined;
    const srcRowBytes = t.byteLength / rows;
    const dstRowBytes = formatBytes(dtype, 1, cols);
    const perPart = rowsPerPart(rows, cols, dtype, this.limit);
    // Chunks of whole rows whose encoding is whole words, so every write starts on a word.
    const align = 4 / gcd(dstRowBytes, 4);
    const chunkRows = Math.max(align, Math.floor(CHUNK_BYTES / srcRowBytes / align) * align);
    const parts: GpuTensorPart[] = [];
    for (let rowStart = 0; rowStart < rows; rowStart += perPart) {
      const n = Math.min(perPart, rows - rowStart);
      const label = perPart >= rows ? `weight:${t.name}:${dtype}` : `weight:${t.name}:${dtype}:rows${rowStart}+${n}`;
      const buffer = this.buffers.createExact(label, n * dstRowBytes, STORAGE_RW, 'weights');
      for (let r = 0; r < n; r += chunkRows) {
        const m = Math.min(chunkRows, n - r);
        const raw = await t.read(m * srcRowBytes);
        const encoded = kept ? raw : encodeRows({ dtype: t.dtype, data: raw }, dtype, cols);
        this.buffers.write(buffer, encoded, r * dstRowBytes);
        this.count(dtype, encoded.byteLength);
        await this.flushEvery(encoded.byteLength);
      }
      parts.push({ buffer, rowStart, rows: n });
    }
    if (parts.length === 1) return { buffer: parts[0].buffer, dtype, shape: t.shape };
    return { buffer: parts[0].buffer, dtype, shape: t.shape, parts };
  }

  /**
   * Queued writes keep a staging copy in the driver until the GPU has taken them: wait for the
   * queue every FLUSH_BYTES so those copies never add up to the file.
   */
  private async flushEvery(bytes: number): Promise<void> {
    this.unflushed += bytes;
    if (this.unflushed < FLUSH_BYTES) return;
    this.unflushed = 0;
    await this.buffers.flushWrites();
  }

  private layer(i: number): GpuLayerWeights {
    const p = layerPrefix(i);
    const a = `${p}self_attn.`;
    const c = this.config;
    const optional = (name: string): GPUBuffer | undefined => this.vectors.get(name);
    return {
      inputNorm: this.vector_(`${p}input_layernorm.weight`),
      q: this.matrix_(`${a}q_proj.weight`),
      k: this.matrix_(`${a}k_proj.weight`),
      v: this.matrix_(`${a}v_proj.weight`),
      o: this.matrix_(`${a}o_proj.weight`),
      qBias: c.attentionBias ? this.vector_(`${a}q_proj.bias`) : undefined,
      kBias: c.attentionBias ? this.vector_(`${a}k_proj.bias`) : undefined,
      vBias: c.attentionBias ? this.vector_(`${a}v_proj.bias`) : undefined,
      oBias: c.attentionOutputBias ? optional(`${a}o_proj.bias`) : undefined,
      qNorm: c.qkNorm ? this.vector_(`${a}q_norm.weight`) : undefined,
      kNorm: c.qkNorm ? this.vector_(`${a}k_norm.weight`) : undefined,
      postNorm: this.vector_(`${p}post_attention_layernorm.weight`),
      gate: this.matrix_(`${p}mlp.gate_proj.weight`),
      up: this.matrix_(`${p}mlp.up_proj.weight`),
      down: this.matrix_(`${p}mlp.down_proj.weight`),
    };
  }

  private matrix_(name: string): GpuTensor {
    const m = this.matrices.get(name);
    if (!m) throw new InvalidRequestError(`checkpoint has no tensor ${name}`, { tensor: name });
    return m;
  }

  private vector_(name: string): GPUBuffer {
    const v = this.vectors.get(name);
    if (!v) throw new InvalidRequestError(`checkpoint has no tensor ${name}`, { tensor: name });
    return v;
  }

  private count(format: string, bytes: number): void {
    this.bytes += bytes;
    this.byFormat[format] = (this.byFormat[format] ?? 0) + bytes;
  }
}

/** Tensors already in memory through the same path (tests, tools): each is one chunk. */
export async function uploadWeights(
  buffers: GpuBuffers,
  maxBinding: number,
  config: ModelConfig,
  tensors: ReadonlyMap<string, TensorEntry>,
  options: UploadOptions = {},
): Promise<GpuModelWeights> {
  const loader = new WeightLoader(buffers, maxBinding, config, options);
  await feedTensors(loader, tensors);
  return loader.finish();
}

/** Hand tensors held in memory to a loader (a GGUF file's, or a test's), block layouts marked. */
export async function feedTensors(loader: WeightLoader, tensors: ReadonlyMap<string, TensorEntry | BlockTensorEntry>): Promise<void> {
  const headers = new Map<string, TensorHeader>();
  for (const [name, e] of tensors) headers.set(name, { dtype: e.dtype, shape: e.shape, byteLength: e.data.byteLength });
  loader.begin(headers);
  for (const [name, e] of tensors) {
    let offset = 0;
    const read = async (n: number): Promise<Uint8Array> => e.data.subarray(offset, (offset += n));
    const ggmlType = 'ggmlType' in e ? e.ggmlType : undefined;
    await loader.tensor({ name, dtype: e.dtype, shape: e.shape, byteLength: e.data.byteLength, read, ...(ggmlType ? { ggmlType } : {}) });
  }
}
