/**
 * Dequantization of ggml's block types, as GGUF files store them (ggml-common.h's block_* structs,
 * all little-endian, f16 scales). The CPU reference computes with these values, and the GPU
 * kernels decode the same bytes in registers, so both see the same weights.
 *
 *   Q8_0  34 B / 32:  d f16 | qs i8[32]                          x = d*q
 *   Q4_0  18 B / 32:  d f16 | qs u8[16]                          x = d*(nib-8); byte j: elem j low, j+16 high
 *   Q4_1  20 B / 32:  d f16 | m f16 | qs u8[16]                  x = d*nib + m
 *   Q5_0  22 B / 32:  d f16 | qh u32 | qs u8[16]                 x = d*((nib | hbit<<4) - 16); hbit of elem j is qh bit j
 *   Q5_1  24 B / 32:  d f16 | m f16 | qh u32 | qs u8[16]         x = d*(nib | hbit<<4) + m
 *   Q4_K 144 B / 256: d f16 | dmin f16 | scales u8[12] | qs u8[128]
 *                     8 sub-blocks of 32 with 6-bit (scale, min) pairs packed in `scales`;
 *                     x = d*sc*nib - dmin*mn; each 64 elements: 32 low nibbles then 32 high of 32 bytes
 *   Q5_K 176 B / 256: d f16 | dmin f16 | scales u8[12] | qh u8[32] | qs u8[128]; as Q4_K plus a 5th
 *                     bit: in the n-th 64-element group, qh[l] bit 2n for the low half, 2n+1 for the high
 *   Q6_K 210 B / 256: ql u8[128] | qh u8[64] | scales i8[16] | d f16
 *                     x = d*sc[16-elem sub-block]*(q - 32), q = 4 bits of ql | 2 bits of qh << 4
 */
import { InternalError, InvalidRequestError, UnsupportedTensorTypeError } from './errors.ts';
import { bf16BitsToF32, f16BitsToF32 } from './half.ts';
import { ggmlType, isDequantizable, type GgmlTypeName } from './ggml-types.ts';

const f32 = Math.fround;

const h = (b: Uint8Array, at: number): number => f16BitsToF32(b[at] | (b[at + 1] << 8));

type BlockDecoder = (b: Uint8Array, at: number, out: Float32Array, o: number) => void;

function q8_0(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  for (let j = 0; j < 32; j++) out[o + j] = d * ((b[at + 2 + j] << 24) >> 24);
}

function q4_0(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 2 + j];
    out[o + j] = d * ((q & 15) - 8);
    out[o + j + 16] = d * ((q >> 4) - 8);
  }
}

function q4_1(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  const m = h(b, at + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 4 + j];
    out[o + j] = f32(d * (q & 15)) + m;
    out[o + j + 16] = f32(d * (q >> 4)) + m;
  }
}

const u32At = (b: Uint8Array, at: number): number => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

function q5_0(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  const qh = u32At(b, at + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 6 + j];
    out[o + j] = d * (((q & 15) | (((qh >>> j) & 1) << 4)) - 16);
    out[o + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
  }
}

function q5_1(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  const m = h(b, at + 2);
  const qh = u32At(b, at + 4);
  for (let j = 0; j < 16; j++) {
    const q = b[at + 8 + j];
    out[o + j] = f32(d * ((q & 15) | (((qh >>> j) & 1) << 4))) + m;
    out[o + j + 16] = f32(d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4))) + m;
  }
}

/** The j-th 6-bit (scale, min) pair of a Q4_K/Q5_K `scales` field at `s` (ggml's get_scale_min_k4). */
export function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

function q4_K(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  const dmin = h(b, at + 2);
  for (let g = 0; g < 4; g++) {
    const [sc1, m1] = scaleMinK4(b, at + 4, 2 * g);
    const [sc2, m2] = scaleMinK4(b, at + 4, 2 * g + 1);
    const d1 = f32(d * sc1), min1 = f32(dmin * m1), d2 = f32(d * sc2), min2 = f32(dmin * m2);
    const q = at + 16 + 32 * g;
    for (let l = 0; l < 32; l++) {
      out[o + 64 * g + l] = f32(d1 * (b[q + l] & 15)) - min1;
      out[o + 64 * g + 32 + l] = f32(d2 * (b[q + l] >> 4)) - min2;
    }
  }
}

function q5_K(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at);
  const dmin = h(b, at + 2);
  const qh = at + 16;
  for (let g = 0; g < 4; g++) {
    const [sc1, m1] = scaleMinK4(b, at + 4, 2 * g);
    const [sc2, m2] = scaleMinK4(b, at + 4, 2 * g + 1);
    const d1 = f32(d * sc1), min1 = f32(dmin * m1), d2 = f32(d * sc2), min2 = f32(dmin * m2);
    const ql = at + 48 + 32 * g;
    for (let l = 0; l < 32; l++) {
      const hi = b[qh + l];
      out[o + 64 * g + l] = f32(d1 * ((b[ql + l] & 15) + (((hi >> (2 * g)) & 1) << 4))) - min1;
      out[o + 64 * g + 32 + l] = f32(d2 * ((b[ql + l] >> 4) + (((hi >> (2 * g + 1)) & 1) << 4))) - min2;
    }
  }
}

function q6_K(b: Uint8Array, at: number, out: Float32Array, o: number): void {
  const d = h(b, at + 208);
  for (let half = 0; half < 2; half++) {
    const ql = at + 64 * half;
    const qh = at + 128 + 32 * half;
    const sc = at + 192 + 8 * half;
    const y = o + 128 * half;
    const s = (k: number): number => f32(d * ((b[sc + k] << 24) >> 24));
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const hi = b[qh + l];
      out[y + l] = s(is) * (((b[ql + l] & 15) | ((hi & 3) << 4)) - 32);
      out[y + l + 32] = s(is + 2) * (((b[ql + l + 32] & 15) | (((hi >> 2) & 3) << 4)) - 32);
      out[y + l + 64] = s(is + 4) * (((b[ql + l] >> 4) | (((hi >> 4) & 3) << 4)) - 32);
      out[y + l + 96] = s(is + 6) * (((b[ql + l + 32] >> 4) | (((hi >> 6) & 3) << 4)) - 32);
    }
  }
}

const f32Elem: BlockDecoder = (b, at, out, o) => {
  out[o] = new DataView(b.buffer, b.byteOffset + at, 4).getFloat32(0, true);
};
const f16Elem: BlockDecoder = (b, at, out, o) => {
  out[o] = h(b, at);
};
const bf16Elem: BlockDecoder = (b, at, out, o) => {
  out[o] = bf16BitsToF32(b[at] | (b[at + 1] << 8));
};

const DECODERS: Readonly<Partial<Record<GgmlTypeName, BlockDecoder>>> = {
  F32: f32Elem, F16: f16Elem, BF16: bf16Elem,
  Q8_0: q8_0, Q4_0: q4_0, Q4_1: q4_1, Q5_0: q5_0, Q5_1: q5_1, Q4_K: q4_K, Q5_K: q5_K, Q6_K: q6_K,
};

/**
 * The f32 values of `elements` elements stored as ggml `type` in `bytes`. `tensor` names the
 * tensor in errors. A type we cannot decode is an UnsupportedTensorTypeError naming both.
 */
export function dequantizeGgml(type: string, bytes: Uint8Array, elements: number, tensor = '?'): Float32Array {
  if (!isDequantizable(type)) {
    throw new UnsupportedTensorTypeError(`tensor ${tensor} has type ${type}, which the runtime cannot decode`, { tensor, type });
  }
  const decode = DECODERS[type];
  if (decode === undefined) throw new InternalError(`no decoder for ${type}`, { type });
  const { blockElements: B, blockBytes } = ggmlType(type);
  if (elements % B !== 0 || bytes.length < (elements / B) * blockBytes) {
    throw new InvalidRequestError(`tensor ${tensor}: ${bytes.length} bytes of ${type} do not hold ${elements} elements`, { tensor, type, elements });
  }
  const out = new Float32Array(elements);
  for (let blk = 0; blk * B < elements; blk++) decode(bytes, blk * blockBytes, out, blk * B);
  return out;
}
