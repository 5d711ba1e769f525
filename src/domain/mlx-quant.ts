import { ModelFormatError, UnsupportedModelError, UnsupportedTensorTypeError } from './errors.ts';
import { bf16BitsToF32, f16BitsToF32 } from './half.ts';

/**
 * MLX quantized checkpoints (mlx-community repos), the pure side: the `quantization` block of
 * config.json, the strict check of each quantized linear's three tensors, and the affine decode.
 *
 * File layout (mlx.core.quantize, affine mode): a quantized linear `X` of logical shape [out, in]
 * is stored as
 *   X.weight  U32 [out, in * bits / 32]: each u32 holds 32 / bits elements, element j of a word
 *             at bits j*bits .. j*bits+bits-1 (little-endian, row-major);
 *   X.scales  F16|BF16 [out, in / group_size]   X.biases  same dtype and shape;
 *   value(r, c) = scales[r, c / g] * q(r, c) + biases[r, c / g].
 * The embedding (and an untied lm_head) is quantized the same way; norms and biases are not.
 *
 * On the GPU a matrix is one buffer of affine groups (gpuBlocksOf): per group of g elements of a
 * row, the group's scale and bias (2 bytes each, as the file stores them) then its g*bits/8
 * packed bytes (the file's u32 words, unchanged). That is exactly the file's bytes, regrouped so
 * the kernels' w_at reads one block (see webgpu/kernels/matmul_weights_mlx.wgsl).
 *
 * Bits 2, 4 and 8 are supported (an element never straddles a word); 3, 5 and 6 are refused
 * with UnsupportedTensorTypeError naming the tensor. Group sizes are MLX's: 32, 64, 128.
 */

export const MLX_BITS = [2, 4, 8] as const;
export const MLX_GROUP_SIZES = [32, 64, 128] as const;
export type MlxBits = (typeof MLX_BITS)[number];
export type MlxGroupSize = (typeof MLX_GROUP_SIZES)[number];
export type MlxScaleDtype = 'F16' | 'BF16';

export interface MlxQuantParams {
  readonly groupSize: number;
  readonly bits: number;
}

/** config.json's quantization: the default, and per-module overrides (false = not quantized). */
export interface MlxQuantization extends MlxQuantParams {
  readonly overrides: ReadonlyMap<string, MlxQuantParams | false>;
}

/** One quantized linear of a checkpoint, validated. */
export interface MlxLinear {
  /** `X.weight`, the name the runtime knows the matrix by. */
  readonly name: string;
  readonly scales: string;
  readonly biases: string;
  readonly rows: number;
  /** Logical columns (`in`). */
  readonly cols: number;
  readonly bits: MlxBits;
  readonly groupSize: MlxGroupSize;
  readonly scaleDtype: MlxScaleDtype;
}

/** A tensor header as any reader gives it. */
export interface MlxTensorHeader {
  readonly dtype: string;
  readonly shape: readonly number[];
}

function formatError(message: string, reason: string, details: Record<string, unknown> = {}): ModelFormatError {
  return new ModelFormatError(`mlx: ${message}`, { reason, ...details });
}

function params(v: unknown, where: string): MlxQuantParams {
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  const groupSize = o['group_size'];
  const bits = o['bits'];
  if (!Number.isInteger(groupSize) || (groupSize as number) <= 0 || !Number.isInteger(bits) || (bits as number) <= 0 || (bits as number) > 8) {
    throw formatError(`${where} needs integer group_size > 0 and bits in 1..8`, 'bad-quantization', { where, groupSize, bits });
  }
  return { groupSize: groupSize as number, bits: bits as number };
}

/**
 * The MLX quantization of a parsed config.json, or undefined for an unquantized model. MLX
 * writes `quantization` (and a copy as `quantization_config`); a `quantization_config` with a
 * `quant_method` is another scheme (GPTQ, AWQ, ...), which we refuse by name.
 */
export function mlxQuantization(config: unknown): MlxQuantization | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const c = config as Record<string, unknown>;
  let q = c['quantization'];
  if (q === undefined || q === null) {
    const hf = c['quantization_config'];
    if (hf === undefined || hf === null) return undefined;
    const method = typeof hf === 'object' ? (hf as Record<string, unknown>)['quant_method'] : undefined;
    if (method !== undefined && method !== 'mlx') {
      throw new UnsupportedModelError(`quantization_config.quant_method ${String(method)} is not supported (MLX affine and GGUF are)`, { quantMethod: String(method) });
    }
    q = hf;
  }
  const mode = (q as Record<string, unknown>)['mode'];
  if (mode !== undefined && mode !== 'affine') {
    throw new UnsupportedModelError(`MLX quantization mode ${String(mode)} is not supported (affine is)`, { mode: String(mode) });
  }
  const base = params(q, 'quantization');
  const overrides = new Map<string, MlxQuantParams | false>();
  for (const [key, value] of Object.entries(q as Record<string, unknown>)) {
    if (key === 'group_size' || key === 'bits' || key === 'mode' || key === 'quant_method') continue;
    if (value === false) overrides.set(key, false);
    else if (typeof value === 'object' && value !== null) overrides.set(key, params(value, `quantization.${key}`));
  }
  return { ...base, overrides };
}

/** The quantization of module `prefix` (`model.layers.0.mlp.down_proj`). */
export function mlxParamsFor(q: MlxQuantization, prefix: string): MlxQuantParams | false {
  return q.overrides.get(prefix) ?? { groupSize: q.groupSize, bits: q.bits };
}

function isMember<T extends number>(list: readonly T[], v: number): v is T {
  return (list as readonly number[]).includes(v);
}

/** Check one quantized linear's tensors against its quantization; the logical [rows, cols]. */
function checkLinear(prefix: string, q: MlxQuantParams, w: MlxTensorHeader, s: MlxTensorHeader | undefined, b: MlxTensorHeader | undefined): MlxLinear {
  const name = `${prefix}.weight`;
  if (s === undefined) throw formatError(`${name} is packed but ${prefix}.scales is missing`, 'missing-scales', { tensor: name });
  if (b === undefined) throw formatError(`${name} is packed but ${prefix}.biases is missing`, 'missing-biases', { tensor: name });
  if (!isMember(MLX_BITS, q.bits)) {
    throw new UnsupportedTensorTypeError(`tensor ${name} is quantized to ${q.bits} bits; MLX weights of 2, 4 or 8 bits are supported`, { tensor: name, type: `mlx-${q.bits}bit`, bits: q.bits });
  }
  if (!isMember(MLX_GROUP_SIZES, q.groupSize)) {
    throw new UnsupportedTensorTypeError(`tensor ${name} has group_size ${q.groupSize}; MLX group sizes 32, 64 and 128 are supported`, { tensor: name, type: `mlx-g${q.groupSize}`, groupSize: q.groupSize });
  }
  if (w.dtype !== 'U32' || w.shape.length !== 2) throw formatError(`${name} must be a 2-D U32 tensor, got ${w.dtype} [${w.shape.join(', ')}]`, 'bad-packed-weight', { tensor: name });
  if (s.dtype !== 'F16' && s.dtype !== 'BF16') {
    throw new UnsupportedTensorTypeError(`tensor ${prefix}.scales has type ${s.dtype}; MLX scales must be F16 or BF16`, { tensor: `${prefix}.scales`, type: s.dtype });
  }
  if (b.dtype !== s.dtype) throw formatError(`${prefix}.biases is ${b.dtype} but ${prefix}.scales is ${s.dtype}`, 'bad-biases', { tensor: `${prefix}.biases` });
  const [rows, words] = w.shape;
  const cols = (words * 32) / q.bits;
  const groups = cols / q.groupSize;
  const want = [rows, groups];
  for (const [t, label] of [[s, 'scales'], [b, 'biases']] as const) {
    if (!Number.isInteger(groups) || t.shape.length !== 2 || t.shape[0] !== want[0] || t.shape[1] !== want[1]) {
      throw formatError(
        `${prefix}.${label} has shape [${t.shape.join(', ')}], but ${name} [${w.shape.join(', ')}] at ${q.bits} bits, group_size ${q.groupSize} needs [${rows}, ${groups}] (in = ${cols} must be a multiple of group_size)`,
        'shape-mismatch',
        { tensor: `${prefix}.${label}`, bits: q.bits, groupSize: q.groupSize },
      );
    }
  }
  return { name, scales: `${prefix}.scales`, biases: `${prefix}.biases`, rows, cols, bits: q.bits, groupSize: q.groupSize, scaleDtype: s.dtype };
}

/**
 * Every quantized linear of a checkpoint, keyed by `X.weight`, validated against the config's
 * quantization before a byte of data is read. A packed (U32) weight without its scales, scales
 * without a weight, or shapes that disagree with group_size/bits are ModelFormatErrors.
 */
export function planMlxLinears(q: MlxQuantization, headers: ReadonlyMap<string, MlxTensorHeader>): Map<string, MlxLinear> {
  const out = new Map<string, MlxLinear>();
  for (const [name, h] of headers) {
    const m = /^(.*)\.(weight|scales|biases)$/.exec(name);
    if (m === null) continue;
    const prefix = m[1];
    const weight = headers.get(`${prefix}.weight`);
    if (m[2] !== 'weight') {
      if (weight === undefined) throw formatError(`${name} has no ${prefix}.weight`, 'missing-weight', { tensor: name });
      continue;
    }
    const scales = headers.get(`${prefix}.scales`);
    if (h.dtype !== 'U32' && scales === undefined) continue;
    const p = mlxParamsFor(q, prefix);
    if (p === false) throw formatError(`${name} is packed but quantization.${prefix} is false`, 'not-quantized', { tensor: name });
    out.set(name, checkLinear(prefix, p, h, scales, headers.get(`${prefix}.biases`)));
  }
  return out;
}

/** Bytes of one row in the GPU block layout (= the row's bytes in the file, all three tensors). */
export function mlxRowBytes(l: Pick<MlxLinear, 'cols' | 'bits' | 'groupSize'>): number {
  return (l.cols / l.groupSize) * mlxBlockBytes(l);
}

/** Bytes of one affine group on the GPU: scale, bias (2 bytes each), then the packed elements. */
export function mlxBlockBytes(l: Pick<MlxLinear, 'bits' | 'groupSize'>): number {
  return 4 + (l.groupSize * l.bits) / 8;
}

/**
 * `rows` rows of a linear in the GPU block layout, from the same rows of its three tensors
 * (bytes as the file stores them). Row-independent, so a loader can convert any run of rows.
 */
export function mlxGpuBlocks(l: MlxLinear, rows: number, packed: Uint8Array, scales: Uint8Array, biases: Uint8Array): Uint8Array {
  const groups = l.cols / l.groupSize;
  const groupBytes = (l.groupSize * l.bits) / 8;
  const block = 4 + groupBytes;
  const out = new Uint8Array(rows * groups * block);
  for (let g = 0; g < rows * groups; g++) {
    const o = g * block;
    out[o] = scales[2 * g];
    out[o + 1] = scales[2 * g + 1];
    out[o + 2] = biases[2 * g];
    out[o + 3] = biases[2 * g + 1];
    out.set(packed.subarray(g * groupBytes, (g + 1) * groupBytes), o + 4);
  }
  return out;
}

/** The f32 values of a quantized linear, scale * q + bias in f32 (the CPU reference's view). */
export function mlxDequantize(l: MlxLinear, packed: Uint8Array, scales: Uint8Array, biases: Uint8Array): Float32Array {
  const half = l.scaleDtype === 'BF16' ? bf16BitsToF32 : f16BitsToF32;
  const words = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const sv = new DataView(scales.buffer, scales.byteOffset, scales.byteLength);
  const bv = new DataView(biases.buffer, biases.byteOffset, biases.byteLength);
  const perWord = 32 / l.bits;
  const mask = (1 << l.bits) - 1;
  const out = new Float32Array(l.rows * l.cols);
  for (let i = 0; i < out.length; i++) {
    const word = words.getUint32(Math.floor(i / perWord) * 4, true);
    const q = (word >>> ((i % perWord) * l.bits)) & mask;
    const g = Math.floor(i / l.groupSize);
    out[i] = Math.fround(Math.fround(half(sv.getUint16(2 * g, true)) * q) + half(bv.getUint16(2 * g, true)));
  }
  return out;
}
