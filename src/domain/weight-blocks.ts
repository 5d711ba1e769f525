import { InvalidRequestError } from './errors.ts';
import { f16BitsToF32, f32ToF16Bits } from './half.ts';

/**
 * Block-quantized weight matrices: the host side (quantize at load, dequantize for the CPU
 * reference) of the layouts the GPU matmul and embedding kernels read.
 *
 * A layout cuts every row of a [rows, cols] matrix into blocks of `blockElements` consecutive
 * elements (cols must be a multiple of it) and stores each block in `blockBytes` bytes, blocks
 * in row-major order with no padding between them: block b of the flat element index i is
 * i / blockElements, at byte b * blockBytes. Any format with that shape (a fixed-size block of
 * fixed bytes along rows) fits the same kernels: the GPU side only needs the descriptor and a
 * WGSL `w_at(i)` that decodes one element of it (see webgpu/weight-formats.ts). GGUF's Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1, the 256-element K-quants and MLX affine groups (scales and biases kept in
 * the block, or in side buffers addressed by block index) are further layouts of this kind.
 *
 * The two layouts built here are byte-compatible with GGUF's, so they double as readers for
 * those GGUF tensor types:
 *   q8 (= GGUF Q8_0): 34 bytes per 32 elements: f16 scale d (little-endian), then 32 int8 q;
 *                     element j = d * q[j]. Symmetric: d = absmax / 127, q = round(x / d).
 *   q4 (= GGUF Q4_0): 18 bytes per 32 elements: f16 scale d, then 16 bytes; byte j holds
 *                     element j in its low nibble and element j + 16 in its high nibble;
 *                     element = d * (nibble - 8). Quantized symmetrically: d = absmax / 7,
 *                     nibble = round(x / d) + 8 in 1..15 (Q4_0 readers accept 0..15).
 * The scale is rounded to f16 before quantizing, so dequantization is exactly d * q on both the
 * CPU and the GPU (an 11-bit times a 4- or 8-bit integer is exact in f32).
 */
export type BlockQuant = 'q8' | 'q4';

export interface BlockLayout {
  readonly blockElements: number;
  readonly blockBytes: number;
}

export const BLOCK_LAYOUTS: Readonly<Record<BlockQuant, BlockLayout>> = {
  q8: { blockElements: 32, blockBytes: 34 },
  q4: { blockElements: 32, blockBytes: 18 },
};

const QMAX: Readonly<Record<BlockQuant, number>> = { q8: 127, q4: 7 };

/** Bytes of a [rows, cols] matrix in `kind`; cols must be a multiple of the block size. */
export function blockQuantBytes(kind: BlockQuant, rows: number, cols: number): number {
  const { blockElements, blockBytes } = BLOCK_LAYOUTS[kind];
  if (cols % blockElements !== 0) {
    throw new InvalidRequestError(`${kind} needs rows that are a multiple of ${blockElements} elements, got ${cols}`, { kind, cols });
  }
  return (rows * cols * blockBytes) / blockElements;
}

/** Quantize a row-major [rows, cols] f32 matrix into `kind` blocks. */
export function quantizeBlocks(kind: BlockQuant, data: Float32Array, cols: number): Uint8Array {
  const rows = data.length / cols;
  const out = new Uint8Array(blockQuantBytes(kind, rows, cols));
  const { blockElements: B, blockBytes } = BLOCK_LAYOUTS[kind];
  const qmax = QMAX[kind];
  for (let b = 0; b * B < data.length; b++) {
    const x = data.subarray(b * B, (b + 1) * B);
    let absmax = 0;
    for (let j = 0; j < B; j++) absmax = Math.max(absmax, Math.abs(x[j]));
    if (!Number.isFinite(absmax)) throw new InvalidRequestError('cannot quantize a weight that is not finite', { block: b });
    const dBits = f32ToF16Bits(absmax / qmax);
    const d = f16BitsToF32(dBits);
    if (!Number.isFinite(d)) throw new InvalidRequestError('weight block scale overflows f16', { block: b, absmax });
    const at = b * blockBytes;
    out[at] = dBits & 0xff;
    out[at + 1] = dBits >>> 8;
    const q = (j: number): number => (d === 0 ? 0 : Math.max(-qmax, Math.min(qmax, Math.round(x[j] / d))));
    if (kind === 'q8') {
      for (let j = 0; j < B; j++) out[at + 2 + j] = q(j) & 0xff;
    } else {
      for (let j = 0; j < B / 2; j++) out[at + 2 + j] = (q(j) + 8) | ((q(j + B / 2) + 8) << 4);
    }
  }
  return out;
}

/** The f32 values a `kind` matrix of `elements` elements stands for (the CPU reference's view). */
export function dequantizeBlocks(kind: BlockQuant, bytes: Uint8Array, elements: number): Float32Array {
  const { blockElements: B, blockBytes } = BLOCK_LAYOUTS[kind];
  if (elements % B !== 0 || bytes.length < (elements / B) * blockBytes) {
    throw new InvalidRequestError(`${kind} data of ${bytes.length} bytes does not hold ${elements} elements`, { kind, elements });
  }
  const out = new Float32Array(elements);
  for (let b = 0; b * B < elements; b++) {
    const at = b * blockBytes;
    const d = f16BitsToF32(bytes[at] | (bytes[at + 1] << 8));
    for (let j = 0; j < B; j++) {
      let q: number;
      if (kind === 'q8') q = (bytes[at + 2 + j] << 24) >> 24;
      else q = (j < B / 2 ? bytes[at + 2 + j] & 15 : bytes[at + 2 + j - B / 2] >> 4) - 8;
      out[b * B + j] = d * q;
    }
  }
  return out;
}

/**
 * The fingerprint of a model whose weights were quantized at load: KV computed under quantized
 * weights differs from the original's, so caches name the quantization and are refused across it.
 */
export function quantizedFingerprint(fingerprint: string, quant: BlockQuant | undefined): string {
  return quant ? `${fingerprint}+${quant}` : fingerprint;
}
