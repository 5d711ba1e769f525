import weightsBf16Wgsl from './kernels/matmul_weights_bf16.wgsl?raw';
import weightBytesWgsl from './kernels/matmul_weights_bytes.wgsl?raw';
import weightsF16Wgsl from './kernels/matmul_weights_f16.wgsl?raw';
import weightsF16NativeWgsl from './kernels/matmul_weights_f16_native.wgsl?raw';
import weightsF32Wgsl from './kernels/matmul_weights_f32.wgsl?raw';
import weightsQ4Wgsl from './kernels/matmul_weights_q4.wgsl?raw';
import weightsQ41Wgsl from './kernels/matmul_weights_q4_1.wgsl?raw';
import weightsQ4KWgsl from './kernels/matmul_weights_q4_k.wgsl?raw';
import weightsQ50Wgsl from './kernels/matmul_weights_q5_0.wgsl?raw';
import weightsQ51Wgsl from './kernels/matmul_weights_q5_1.wgsl?raw';
import weightsQ5KWgsl from './kernels/matmul_weights_q5_k.wgsl?raw';
import weightsQ6KWgsl from './kernels/matmul_weights_q6_k.wgsl?raw';
import weightsQ8Wgsl from './kernels/matmul_weights_q8.wgsl?raw';
import weightsVec4Wgsl from './kernels/matmul_weights_vec4.wgsl?raw';
import weightsMlxWgsl from './kernels/matmul_weights_mlx.wgsl?raw';
import { InvalidRequestError } from '../../domain/errors.ts';
import { ggmlType, type GgmlTypeName } from '../../domain/ggml-types.ts';
import { BLOCK_LAYOUTS } from '../../domain/weight-blocks.ts';
import { MLX_BITS, MLX_GROUP_SIZES, mlxBlockBytes, type MlxBits, type MlxGroupSize, type MlxScaleDtype } from '../../domain/mlx-quant.ts';
import type { PipelineVariant } from './pipelines.ts';

/**
 * The quantized-matrix abstraction: how a weight matrix sits in GPU memory, described once and
 * shared by every kernel that reads weights (matmul_tiled, matmul_vec, embedding).
 *
 * A format is a block layout along rows: `blockElements` consecutive elements of a row take
 * `blockBytes` bytes, blocks back to back in row-major order (plain dtypes are blocks of 1 or 2
 * elements). Its WGSL accessor declares the weight binding (`w`, @binding(1)) and one function,
 * `fn w_at(i: u32) -> f32`, the f32 value of flat element i = row * cols + col, decoded in
 * registers, and `fn w_at4(i: u32) -> vec4<f32>`, elements i..i+3 for i a multiple of 4 (a
 * format without its own gets the generic one from w_at, matmul_weights_vec4.wgsl). The kernels
 * are written against w_at and w_at4 only, so they never see the layout, and a
 * quantized matrix is never expanded in GPU memory. The reduction is the same f32 fma sequence
 * for every format, so batch invariance holds for each.
 *
 * Adding a layout (GGUF Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, MLX affine groups) = a descriptor here (block
 * size, bytes per block, accessor WGSL), the host-side packer/dequantizer in
 * domain/weight-blocks.ts for the CPU reference, and nothing in the kernels. K-quants use
 * 256-element super-blocks (rows a multiple of 256). MLX keeps scales and biases in separate
 * tensors; the loader regroups them in front of each group's packed words (the same bytes, one
 * buffer: domain/mlx-quant.ts), so its accessor, too, needs only `w`. q8 and q4 are
 * byte-compatible with GGUF Q8_0 and Q4_0.
 */
export type GpuDtype = 'f32' | 'f16' | 'bf16' | 'q8' | 'q4' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k' | MlxDtype;

/** MLX affine groups: bits, group size and the scale/bias dtype (mlx4_g64_bf16, ...). */
export type MlxDtype = `mlx${MlxBits}_g${MlxGroupSize}_${'f16' | 'bf16'}`;

export interface WeightFormat {
  readonly dtype: GpuDtype;
  /** Elements of a row per block; a row's length must be a multiple of it. */
  readonly blockElements: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  /** WGSL declaring `w` at @binding(1) and `fn w_at(i: u32) -> f32`. */
  readonly wgsl: string;
  /** The same bytes read with shader-f16 loads, used where the device has the feature. */
  readonly nativeF16Wgsl?: string;
}

/** A block accessor with the shared `w` binding and byte readers (w_byte, w_half) before it. */
function byteBlocks(accessor: string): string {
  return `${weightBytesWgsl}\n${accessor}`;
}

export const WEIGHT_FORMATS: Readonly<Record<GpuDtype, WeightFormat>> = {
  f32: { dtype: 'f32', blockElements: 1, blockBytes: 4, wgsl: weightsF32Wgsl },
  // Two elements per u32 word: rows have an even length so that each row starts on a word.
  f16: { dtype: 'f16', blockElements: 2, blockBytes: 4, wgsl: weightsF16Wgsl, nativeF16Wgsl: weightsF16NativeWgsl },
  bf16: { dtype: 'bf16', blockElements: 2, blockBytes: 4, wgsl: weightsBf16Wgsl },
  q8: { dtype: 'q8', ...BLOCK_LAYOUTS.q8, wgsl: byteBlocks(weightsQ8Wgsl) },
  q4: { dtype: 'q4', ...BLOCK_LAYOUTS.q4, wgsl: byteBlocks(weightsQ4Wgsl) },
  // GGUF block layouts kept as the file stores them (domain/gguf-blocks.ts decodes the same bytes).
  q4_1: ggufFormat('q4_1', 'Q4_1', weightsQ41Wgsl),
  q5_0: ggufFormat('q5_0', 'Q5_0', weightsQ50Wgsl),
  q5_1: ggufFormat('q5_1', 'Q5_1', weightsQ51Wgsl),
  q4_k: ggufFormat('q4_k', 'Q4_K', weightsQ4KWgsl),
  q5_k: ggufFormat('q5_k', 'Q5_K', weightsQ5KWgsl),
  q6_k: ggufFormat('q6_k', 'Q6_K', weightsQ6KWgsl),
  // MLX affine groups: each group's scale and bias regrouped in front of its packed words.
  ...mlxFormats(),
};

/** The GPU format of an MLX quantized linear. */
export function mlxDtype(bits: MlxBits, groupSize: MlxGroupSize, scaleDtype: MlxScaleDtype): MlxDtype {
  return `mlx${bits}_g${groupSize}_${scaleDtype === 'BF16' ? 'bf16' : 'f16'}`;
}

/** One format per (bits, group size, scale dtype): the accessor is one file with its constants. */
function mlxFormats(): Record<MlxDtype, WeightFormat> {
  const out: Partial<Record<MlxDtype, WeightFormat>> = {};
  for (const bits of MLX_BITS) {
    for (const groupSize of MLX_GROUP_SIZES) {
      for (const scale of ['F16', 'BF16'] as const) {
        const dtype = mlxDtype(bits, groupSize, scale);
        const consts = `const MLX_BITS: u32 = ${bits}u;\nconst MLX_GROUP: u32 = ${groupSize}u;\nconst MLX_BF16: bool = ${scale === 'BF16'};`;
        out[dtype] = { dtype, blockElements: groupSize, blockBytes: mlxBlockBytes({ bits, groupSize }), wgsl: byteBlocks(`${consts}\n${weightsMlxWgsl}`) };
      }
    }
  }
  return out as Record<MlxDtype, WeightFormat>;
}

function ggufFormat(dtype: GpuDtype, type: GgmlTypeName, wgsl: string): WeightFormat {
  const { blockElements, blockBytes } = ggmlType(type);
  return { dtype, blockElements, blockBytes, wgsl: byteBlocks(wgsl) };
}

/**
 * The GPU format that keeps a ggml tensor type's bytes as they are (q8 and q4 are Q8_0 and Q4_0;
 * F16 and BF16 rows are packed halves), or undefined for a type without a kernel accessor.
 */
export function gpuDtypeOfGgml(type: string): GpuDtype | undefined {
  const map: Readonly<Record<string, GpuDtype>> = {
    F32: 'f32', F16: 'f16', BF16: 'bf16', Q8_0: 'q8', Q4_0: 'q4',
    Q4_1: 'q4_1', Q5_0: 'q5_0', Q5_1: 'q5_1', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k',
  };
  return map[type];
}

export function isGpuDtype(v: unknown): v is GpuDtype {
  return typeof v === 'string' && v in WEIGHT_FORMATS;
}

/** Whether rows of `cols` elements can be stored in `dtype` (whole blocks per row). */
export function fitsFormat(dtype: GpuDtype, cols: number): boolean {
  return cols % WEIGHT_FORMATS[dtype].blockElements === 0;
}

/** Bytes of `rows` rows of `cols` elements in `dtype` (exact, before the 4-byte buffer padding). */
export function formatBytes(dtype: GpuDtype, rows: number, cols: number): number {
  const f = WEIGHT_FORMATS[dtype];
  if (!fitsFormat(dtype, cols)) {
    throw new InvalidRequestError(`${dtype} weights need rows that are a multiple of ${f.blockElements} elements, got ${cols}`, { dtype, cols });
  }
  return (rows * cols * f.blockBytes) / f.blockElements;
}

/** Bytes a binding of `bytes` must span: WebGPU binds storage in whole 4-byte words. */
export function paddedBytes(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/** The pipeline variant that prepends `dtype`'s accessor (native f16 loads where available). */
export function weightVariant(device: GPUDevice, dtype: GpuDtype): PipelineVariant {
  const f = WEIGHT_FORMATS[dtype];
  if (f.nativeF16Wgsl && device.features.has('shader-f16')) {
    const native = withVec4(f.nativeF16Wgsl);
    return { key: `${dtype}-native`, transform: (code) => `${native}\n${code}` };
  }
  const accessor = withVec4(f.wgsl);
  return { key: dtype, transform: (code) => `${accessor}\n${code}` };
}

/** The accessor plus the generic w_at4 when it does not define its own. */
function withVec4(accessor: string): string {
  return /\bfn w_at4\b/.test(accessor) ? accessor : `${accessor}\n${weightsVec4Wgsl}`;
}
