/**
 * Quantization of KV at rest (warm and cold tiers). Pure functions over flat arrays.
 *
 * Rules, shared by the blob writer and reader:
 * - Symmetric, per group of `groupSize` consecutive values, one f32 scale per group.
 *   A group never crosses a row (a [token, kvHead] vector of headDim values): callers pick the
 *   group size with `resolveGroupSize(headDim, requested)`, which clamps it to a divisor of the row.
 * - q8: scale = maxAbs / 127, q = round(v / scale) in [-127, 127] (Int8). -128 is never written;
 *   a reader still decodes it (as -128 * scale) so foreign bytes stay bounded, not rejected.
 * - q4: scale = maxAbs / 7, q = round(v / scale) in [-7, 7], stored as 4-bit two's complement,
 *   two values per byte, the even-index value in the low nibble. -8 is never written (same
 *   reason as above: symmetric range, so +x and -x quantize to opposite codes).
 * - Rounding is half away from zero, so quantize(-v) = -quantize(v) exactly.
 * - A group of zeros has scale 0 and all-zero codes; dequantization then yields +0.
 * - Error bound: |v - dequant(q)| <= scale / 2 per group (plus f32 rounding of the product).
 * - Inputs must be finite: a NaN or infinity would poison its whole group's scale, and a KV
 *   cache holding one is already broken, so it is refused rather than stored.
 */
import { InvalidRequestError } from './errors.ts';

export const DEFAULT_KV_GROUP_SIZE = 32;

export const Q8_MAX = 127;
export const Q4_MAX = 7;

export interface Q8Quantized {
  readonly q: Int8Array;
  readonly scales: Float32Array;
}

export interface Q4Quantized {
  /** Packed codes, two per byte, low nibble first; length = values / 2. */
  readonly q: Uint8Array;
  readonly scales: Float32Array;
}

export interface QuantizationError {
  /** Largest |original - restored|. */
  readonly maxAbs: number;
  /** Root mean square of original - restored (0 for empty inputs). */
  readonly rms: number;
}

function isPositiveInt(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}

/**
 * The largest divisor of `rowLength` that is <= `requested`: groups then tile every row exactly.
 * E.g. headDim 64 -> 32, headDim 80 -> 20, headDim 48 -> 24, headDim 8 -> 8.
 */
export function resolveGroupSize(rowLength: number, requested: number = DEFAULT_KV_GROUP_SIZE): number {
  if (!isPositiveInt(rowLength)) {
    throw new InvalidRequestError('row length must be a positive integer', { rowLength });
  }
  if (!isPositiveInt(requested)) {
    throw new InvalidRequestError('group size must be a positive integer', { groupSize: requested });
  }
  for (let g = Math.min(requested, rowLength); g > 1; g--) {
    if (rowLength % g === 0) return g;
  }
  return 1;
}

function checkGroups(length: number, groupSize: number): number {
  if (!isPositiveInt(groupSize)) {
    throw new InvalidRequestError('group size must be a positive integer', { groupSize });
  }
  if (length % groupSize !== 0) {
    throw new InvalidRequestError(`${length} values do not split into groups of ${groupSize}`, { length, groupSize });
  }
  return length / groupSize;
}

/** Round half away from zero: symmetric, unlike Math.round, which rounds -2.5 to -2. */
function roundSymmetric(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** max |v| of one group; refuses non-finite values (see the module rules). */
function groupMaxAbs(values: Float32Array, start: number, end: number): number {
  let max = 0;
  for (let i = start; i < end; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      throw new InvalidRequestError(`value at index ${i} is not finite`, { index: i, value: String(v) });
    }
    const a = Math.abs(v);
    if (a > max) max = a;
  }
  return max;
}

/** Compute every group's scale (f32) for a symmetric range [-qMax, qMax]. */
function groupScales(values: Float32Array, groupSize: number, qMax: number): Float32Array {
  const groups = checkGroups(values.length, groupSize);
  const scales = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    scales[g] = groupMaxAbs(values, g * groupSize, (g + 1) * groupSize) / qMax;
  }
  return scales;
}

/**
 * One code from a value. The division uses the stored f32 scale, so the result is consistent
 * with what dequantization multiplies; the clamp only catches a quotient that f32 rounding of
 * the scale nudged past qMax.
 */
function code(v: number, scale: number, qMax: number): number {
  if (scale === 0) return 0;
  const q = roundSymmetric(v / scale);
  return q > qMax ? qMax : q < -qMax ? -qMax : q;
}

/** Symmetric 8-bit quantization, one scale per group of `groupSize` consecutive values. */
export function quantizeQ8(values: Float32Array, groupSize: number = DEFAULT_KV_GROUP_SIZE): Q8Quantized {
  const scales = groupScales(values, groupSize, Q8_MAX);
  const q = new Int8Array(values.length);
  for (let g = 0, i = 0; g < scales.length; g++) {
    for (const end = i + groupSize; i < end; i++) q[i] = code(values[i], scales[g], Q8_MAX);
  }
  return { q, scales };
}

export function dequantizeQ8(q: Int8Array, scales: Float32Array, groupSize: number = DEFAULT_KV_GROUP_SIZE): Float32Array {
  checkScaleCount(q.length, scales.length, groupSize);
  const out = new Float32Array(q.length);
  for (let g = 0, i = 0; g < scales.length; g++) {
    for (const end = i + groupSize; i < end; i++) out[i] = q[i] * scales[g];
  }
  return out;
}

function checkScaleCount(length: number, scaleCount: number, groupSize: number): void {
  const groups = checkGroups(length, groupSize);
  if (groups !== scaleCount) {
    throw new InvalidRequestError(`${length} values in groups of ${groupSize} need ${groups} scales, got ${scaleCount}`, {
      length,
      groupSize,
      scales: scaleCount,
    });
  }
}

/** Symmetric 4-bit quantization, two codes per byte (low nibble first); needs an even length. */
export function quantizeQ4(values: Float32Array, groupSize: number = DEFAULT_KV_GROUP_SIZE): Q4Quantized {
  if (values.length % 2 !== 0) {
    throw new InvalidRequestError('q4 packs two values per byte, so it needs an even length', { length: values.length });
  }
  const scales = groupScales(values, groupSize, Q4_MAX);
  const q = new Uint8Array(values.length / 2);
  for (let i = 0; i < values.length; i += 2) {
    const lo = code(values[i], scales[Math.floor(i / groupSize)], Q4_MAX);
    const hi = code(values[i + 1], scales[Math.floor((i + 1) / groupSize)], Q4_MAX);
    q[i >> 1] = (lo & 0x0f) | ((hi & 0x0f) << 4);
  }
  return { q, scales };
}

/** 4-bit two's complement nibble -> [-8, 7]. */
function nibble(n: number): number {
  return n >= 8 ? n - 16 : n;
}

/** Inverse of quantizeQ4: `packed.length * 2` values. */
export function dequantizeQ4(packed: Uint8Array, scales: Float32Array, groupSize: number = DEFAULT_KV_GROUP_SIZE): Float32Array {
  const length = packed.length * 2;
  checkScaleCount(length, scales.length, groupSize);
  const out = new Float32Array(length);
  for (let b = 0; b < packed.length; b++) {
    const i = b * 2;
    out[i] = nibble(packed[b] & 0x0f) * scales[Math.floor(i / groupSize)];
    out[i + 1] = nibble(packed[b] >> 4) * scales[Math.floor((i + 1) / groupSize)];
  }
  return out;
}

/** How far a round trip moved the values; the arrays must have the same length. */
export function quantizationError(original: Float32Array, restored: Float32Array): QuantizationError {
  if (original.length !== restored.length) {
    throw new InvalidRequestError('original and restored differ in length', {
      original: original.length,
      restored: restored.length,
    });
  }
  let maxAbs = 0;
  let sumSq = 0;
  for (let i = 0; i < original.length; i++) {
    const d = Math.abs(original[i] - restored[i]);
    // A NaN must not hide behind the comparison below, which it would always fail.
    if (Number.isNaN(d)) return { maxAbs: NaN, rms: NaN };
    if (d > maxAbs) maxAbs = d;
    sumSq += d * d;
  }
  return { maxAbs, rms: original.length === 0 ? 0 : Math.sqrt(sumSq / original.length) };
}
