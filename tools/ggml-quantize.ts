/**
 * Quantizers into ggml's block layouts (see src/domain/gguf-blocks.ts for the byte layouts), for
 * writing GGUF fixtures. Plain round-to-nearest with the block's own range, not llama.cpp's
 * error-minimizing search: the fixtures need valid, representative blocks, and every reader
 * (ours, llama.cpp) decodes them the same way whatever chose the integers. Scales are rounded to
 * f16 before the integers are chosen, so the decoded value is the nearest level of the stored grid.
 */
import { ggmlType, type GgmlTypeName } from '../src/domain/ggml-types.ts';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/domain/half.ts';

/** f16-rounded value and its bits. */
function half(x: number): { v: number; bits: number } {
  const bits = f32ToF16Bits(x);
  return { v: f16BitsToF32(bits), bits };
}

function putHalf(out: Uint8Array, at: number, bits: number): void {
  out[at] = bits & 255;
  out[at + 1] = bits >>> 8;
}

const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));

/** The value of largest magnitude, with its sign (ggml's Q4_0/Q5_0 scale choice). */
function signedMax(x: Float32Array): number {
  let best = 0;
  for (const v of x) if (Math.abs(v) > Math.abs(best)) best = v;
  return best;
}

function minMax(x: Float32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi];
}

type BlockEncoder = (x: Float32Array, out: Uint8Array, at: number) => void;

function q8_0(x: Float32Array, out: Uint8Array, at: number): void {
  const amax = Math.abs(signedMax(x));
  const d = half(amax / 127);
  putHalf(out, at, d.bits);
  for (let j = 0; j < 32; j++) out[at + 2 + j] = (d.v === 0 ? 0 : clamp(Math.round(x[j] / d.v), -127, 127)) & 255;
}

/** Symmetric 4/5-bit: levels -2^(bits-1) .. 2^(bits-1)-1 with d = max / -2^(bits-1). */
function symmetric(x: Float32Array, bits: number): { d: { v: number; bits: number }; q: number[] } {
  const offset = 1 << (bits - 1);
  const d = half(signedMax(x) / -offset);
  const q = Array.from(x, (v) => (d.v === 0 ? offset : clamp(Math.round(v / d.v) + offset, 0, 2 * offset - 1)));
  return { d, q };
}

/** Affine 4/5-bit: x = d*q + m with m the block minimum. */
function affine(x: Float32Array, bits: number): { d: { v: number; bits: number }; m: { v: number; bits: number }; q: number[] } {
  const [lo, hi] = minMax(x);
  const levels = (1 << bits) - 1;
  const d = half((hi - lo) / levels);
  const m = half(lo);
  const q = Array.from(x, (v) => (d.v === 0 ? 0 : clamp(Math.round((v - m.v) / d.v), 0, levels)));
  return { d, m, q };
}

function packNibbles(q: readonly number[], out: Uint8Array, at: number): void {
  for (let j = 0; j < 16; j++) out[at + j] = (q[j] & 15) | ((q[j + 16] & 15) << 4);
}

function highBits(q: readonly number[]): number {
  let qh = 0;
  for (let j = 0; j < 32; j++) qh |= ((q[j] >> 4) & 1) << j;
  return qh >>> 0;
}

function putU32(out: Uint8Array, at: number, v: number): void {
  for (let k = 0; k < 4; k++) out[at + k] = (v >>> (8 * k)) & 255;
}

const q4_0: BlockEncoder = (x, out, at) => {
  const { d, q } = symmetric(x, 4);
  putHalf(out, at, d.bits);
  packNibbles(q, out, at + 2);
};
const q4_1: BlockEncoder = (x, out, at) => {
  const { d, m, q } = affine(x, 4);
  putHalf(out, at, d.bits);
  putHalf(out, at + 2, m.bits);
  packNibbles(q, out, at + 4);
};
const q5_0: BlockEncoder = (x, out, at) => {
  const { d, q } = symmetric(x, 5);
  putHalf(out, at, d.bits);
  putU32(out, at + 2, highBits(q));
  packNibbles(q, out, at + 6);
};
const q5_1: BlockEncoder = (x, out, at) => {
  const { d, m, q } = affine(x, 5);
  putHalf(out, at, d.bits);
  putHalf(out, at + 2, m.bits);
  putU32(out, at + 4, highBits(q));
  packNibbles(q, out, at + 8);
};

/**
 * Q4_K/Q5_K: 8 sub-blocks of 32, each x = d*sc*q - dmin*mn with 6-bit sc, mn. Returns the levels
 * (0..2^bits-1) after writing d, dmin and the packed scales.
 */
function kAffine(x: Float32Array, bits: number, out: Uint8Array, at: number): number[] {
  const levels = (1 << bits) - 1;
  const subs = Array.from({ length: 8 }, (_, s) => {
    const [lo, hi] = minMax(x.subarray(32 * s, 32 * s + 32));
    const min = Math.min(0, lo);
    return { scale: (hi - min) / levels, min: -min };
  });
  const d = half(Math.max(...subs.map((s) => s.scale)) / 63);
  const dmin = half(Math.max(...subs.map((s) => s.min)) / 63);
  putHalf(out, at, d.bits);
  putHalf(out, at + 2, dmin.bits);
  const ls = subs.map((s) => (d.v === 0 ? 0 : clamp(Math.round(s.scale / d.v), 0, 63)));
  const lm = subs.map((s) => (dmin.v === 0 ? 0 : clamp(Math.round(s.min / dmin.v), 0, 63)));
  const sc = at + 4;
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      out[sc + j] = ls[j];
      out[sc + j + 4] = lm[j];
    } else {
      out[sc + j + 4] = (ls[j] & 15) | ((lm[j] & 15) << 4);
      out[sc + j - 4] |= (ls[j] >> 4) << 6;
      out[sc + j] |= (lm[j] >> 4) << 6;
    }
  }
  return Array.from(x, (v, i) => {
    const s = i >> 5;
    const step = Math.fround(d.v * ls[s]);
    const offset = Math.fround(dmin.v * lm[s]);
    return step === 0 ? 0 : clamp(Math.round((v + offset) / step), 0, levels);
  });
}

const q4_K: BlockEncoder = (x, out, at) => {
  const q = kAffine(x, 4, out, at);
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) out[at + 16 + 32 * g + l] = q[64 * g + l] | (q[64 * g + 32 + l] << 4);
  }
};

const q5_K: BlockEncoder = (x, out, at) => {
  const q = kAffine(x, 5, out, at);
  for (let g = 0; g < 4; g++) {
    for (let l = 0; l < 32; l++) {
      const lo = q[64 * g + l], hi = q[64 * g + 32 + l];
      out[at + 48 + 32 * g + l] = (lo & 15) | ((hi & 15) << 4);
      out[at + 16 + l] |= ((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1));
    }
  }
};

/** Q6_K: 16 sub-blocks of 16 with int8 scales under one f16 d; levels q - 32 in -32..31. */
const q6_K: BlockEncoder = (x, out, at) => {
  const scales = Array.from({ length: 16 }, (_, s) => Math.abs(signedMax(x.subarray(16 * s, 16 * s + 16))) / 31);
  const d = half(Math.max(...scales) / 127);
  putHalf(out, at + 208, d.bits);
  const sc = scales.map((s) => (d.v === 0 ? 0 : clamp(Math.round(s / d.v), -128, 127)));
  for (let s = 0; s < 16; s++) out[at + 192 + s] = sc[s] & 255;
  const q = Array.from(x, (v, i) => {
    const step = Math.fround(d.v * sc[i >> 4]);
    return (step === 0 ? 0 : clamp(Math.round(v / step), -32, 31)) + 32;
  });
  for (let half6 = 0; half6 < 2; half6++) {
    const y = 128 * half6, ql = at + 64 * half6, qh = at + 128 + 32 * half6;
    for (let l = 0; l < 32; l++) {
      const [q1, q2, q3, q4] = [q[y + l], q[y + l + 32], q[y + l + 64], q[y + l + 96]];
      out[ql + l] = (q1 & 15) | ((q3 & 15) << 4);
      out[ql + l + 32] = (q2 & 15) | ((q4 & 15) << 4);
      out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
};

const f32Enc: BlockEncoder = (x, out, at) => new DataView(out.buffer, out.byteOffset + at, 4).setFloat32(0, x[0], true);
const f16Enc: BlockEncoder = (x, out, at) => putHalf(out, at, f32ToF16Bits(x[0]));
const bf16Enc: BlockEncoder = (x, out, at) => putHalf(out, at, f32ToBf16Bits(x[0]));

const ENCODERS: Readonly<Partial<Record<GgmlTypeName, BlockEncoder>>> = {
  F32: f32Enc, F16: f16Enc, BF16: bf16Enc,
  Q8_0: q8_0, Q4_0: q4_0, Q4_1: q4_1, Q5_0: q5_0, Q5_1: q5_1, Q4_K: q4_K, Q5_K: q5_K, Q6_K: q6_K,
};

export const QUANTIZABLE = Object.keys(ENCODERS) as GgmlTypeName[];

/** Quantize a row-major f32 tensor whose rows are `x.length / rows` long into ggml `type` blocks. */
export function quantizeGgml(type: GgmlTypeName, x: Float32Array): Uint8Array {
  const encode = ENCODERS[type];
  const { blockElements: B, blockBytes } = ggmlType(type);
  if (encode === undefined) throw new RangeError(`no quantizer for ${type}`);
  if (x.length % B !== 0) throw new RangeError(`${type} needs a multiple of ${B} elements, got ${x.length}`);
  const out = new Uint8Array((x.length / B) * blockBytes);
  for (let b = 0; b * B < x.length; b++) encode(x.subarray(b * B, (b + 1) * B), out, b * blockBytes);
  return out;
}
