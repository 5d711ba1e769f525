import { InvalidRequestError } from '../../domain/errors.ts';
import { formatBytes, type GpuDtype } from './weight-formats.ts';

export type { GpuDtype } from './weight-formats.ts';

/**
 * A tensor resident in GPU buffers.
 * - dtype 'f32': one f32 per element, row-major.
 * - dtype 'f16': IEEE half bits, two per u32 word, little-endian (element i is the low half of
 *   word i/2 when i is even), read in WGSL as `array<u32>` with `unpack2x16float(w)[i & 1]`,
 *   which needs no shader-f16 extension. Rows of f16 matrices have an even length.
 * - dtype 'bf16': the checkpoint's bfloat16 bits in the same packing, widened in WGSL by a shift
 *   and a bitcast (2 bytes per weight on the GPU, as in the file).
 * - dtype 'q8' / 'q4': 32-element blocks with an f16 scale (domain/weight-blocks.ts), decoded in
 *   registers. Every format is described once in weight-formats.ts.
 *
 * A matrix larger than the device's storage binding limit is split by rows into `parts`, each
 * its own buffer holding rows [rowStart, rowStart + rows) in the same layout (so part p is the
 * [rows, cols] matrix of those rows). Parts are in order, contiguous, and cover every row. For a
 * split tensor `buffer` is the first part's buffer, which is too small for the whole tensor, so a
 * consumer that ignores `parts` fails its size check instead of reading the wrong rows.
 * Consumers that handle parts (matmul along N, embedding along vocab) go through `tensorParts`.
 */
export interface GpuTensorPart {
  readonly buffer: GPUBuffer;
  /** First row of the whole tensor that this part holds. */
  readonly rowStart: number;
  /** Rows in this part. */
  readonly rows: number;
}

export interface GpuTensor {
  readonly buffer: GPUBuffer;
  readonly dtype: GpuDtype;
  readonly shape: readonly number[];
  /** Row parts of a tensor split to fit the binding limit (absent: one buffer holds it all). */
  readonly parts?: readonly GpuTensorPart[];
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The row parts of a tensor: its `parts`, checked to be in order, contiguous and complete, or
 * one part spanning all rows of an unsplit tensor.
 */
export function tensorParts(t: GpuTensor): readonly GpuTensorPart[] {
  const rows = t.shape[0] ?? 1;
  if (!t.parts) return [{ buffer: t.buffer, rowStart: 0, rows }];
  let next = 0;
  for (const p of t.parts) {
    if (!Number.isSafeInteger(p.rows) || p.rows <= 0 || p.rowStart !== next) {
      throw new InvalidRequestError('tensor parts must be non-empty, in order and contiguous', {
        shape: [...t.shape],
        parts: t.parts.map((q) => [q.rowStart, q.rows]),
      });
    }
    next += p.rows;
  }
  if (next !== rows || t.parts.length === 0 || t.parts[0].buffer !== t.buffer) {
    throw new InvalidRequestError(`tensor parts cover ${next} rows of ${rows} (and the first part must be the tensor's buffer)`, {
      shape: [...t.shape],
      parts: t.parts.map((q) => [q.rowStart, q.rows]),
    });
  }
  return t.parts;
}

/** Rows per part when a [rows, cols] matrix of `dtype` must fit `maxBytes` per binding. */
export function rowsPerPart(rows: number, cols: number, dtype: GpuDtype, maxBytes: number): number {
  const rowBytes = formatBytes(dtype, 1, cols);
  // Against whole words: a part's binding is padded to 4 bytes, which must still fit.
  const fit = Math.floor((Math.floor(maxBytes / 4) * 4) / rowBytes);
  if (fit < 1) {
    throw new InvalidRequestError(`one row of ${rowBytes} bytes exceeds the storage binding limit of ${maxBytes} bytes`, { rowBytes, limit: maxBytes });
  }
  if (fit >= rows) return rows;
  // Whole 64-row blocks when possible: the matmul kernels tile N by 64, so a part boundary on a
  // tile boundary wastes no threads. Correctness does not depend on it.
  return fit >= 64 ? fit - (fit % 64) : fit;
}
