import { InvalidRequestError } from '../../domain/errors.ts';
import { ropeCosSin } from '../../domain/rope.ts';

/**
 * The CPU reference ops: plain f32 TypeScript over row-major Float32Arrays. They are the oracle
 * the WebGPU kernels are tested against, so each is small, exported and testable on its own, and
 * favours being obviously right over being fast. Reductions accumulate in f64 (JS numbers) and
 * round to f32 on store: that is at least as accurate as an f32 kernel, so tolerances stay tight.
 */

function requireLength(name: string, array: ArrayLike<number>, expected: number): void {
  if (array.length !== expected) {
    throw new InvalidRequestError(`${name} has ${array.length} elements, expected ${expected}`, {
      name,
      length: array.length,
      expected,
    });
  }
}

function rowsOf(name: string, x: Float32Array, width: number): number {
  if (width <= 0 || x.length % width !== 0) {
    throw new InvalidRequestError(`${name} length ${x.length} is not a multiple of ${width}`, {
      name,
      length: x.length,
      width,
    });
  }
  return x.length / width;
}

/** Rows of `table` ([vocab, hidden]) for each token id: [tokens, hidden]. */
export function embeddingGather(table: Float32Array, hidden: number, tokenIds: readonly number[]): Float32Array {
  const vocab = rowsOf('embedding table', table, hidden);
  const out = new Float32Array(tokenIds.length * hidden);
  tokenIds.forEach((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new InvalidRequestError(`token id ${id} is outside the vocabulary [0, ${vocab})`, { tokenId: id, vocab });
    }
    out.set(table.subarray(id * hidden, (id + 1) * hidden), t * hidden);
  });
  return out;
}

/**
 * HF RMSNorm over each row of x ([rows, weight.length]):
 * y = x * 1/sqrt(mean(x^2) + eps) * weight. eps sits inside the square root.
 */
export function rmsNorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
  const dim = weight.length;
  const rows = rowsOf('rmsNorm input', x, dim);
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += x[base + i] * x[base + i];
    // HF rounds the normalised x to the input dtype before the weight multiply; in f32 that is a
    // rounding of x * inv, which Math.fround reproduces.
    const inv = Math.fround(1 / Math.sqrt(Math.fround(sumSq / dim) + eps));
    for (let i = 0; i < dim; i++) out[base + i] = Math.fround(x[base + i] * inv) * weight[i];
  }
  return out;
}

export interface RopeShape {
  readonly nTokens: number;
  readonly nHeads: number;
  readonly headDim: number;
}

/**
 * Rotate x ([tokens, heads, headDim]) in place; token t sits at positions[t]. Pair i is
 * (x[i], x[i + headDim/2]): out_i = x_i cos - x_{i+h} sin, out_{i+h} = x_{i+h} cos + x_i sin.
 */
export function applyRope(
  x: Float32Array,
  shape: RopeShape,
  positions: readonly number[],
  invFreq: Float32Array,
): void {
  const { nTokens, nHeads, headDim } = shape;
  const half = headDim / 2;
  requireLength('rope input', x, nTokens * nHeads * headDim);
  requireLength('rope positions', positions, nTokens);
  requireLength('rope invFreq', invFreq, half);
  for (let t = 0; t < nTokens; t++) {
    const { cos, sin } = ropeCosSin(invFreq, positions[t]);
    for (let h = 0; h < nHeads; h++) {
      const base = (t * nHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = x[base + i];
        const b = x[base + i + half];
        x[base + i] = a * cos[i] - b * sin[i];
        x[base + i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
}

/**
 * y = x W^T (+ b): x is [rows, inDim], W is HF's [outDim, inDim], b is [outDim]. Returns
 * [rows, outDim].
 */
export function linear(x: Float32Array, weight: Float32Array, outDim: number, bias?: Float32Array): Float32Array {
  const inDim = rowsOf('linear weight', weight, outDim);
  const rows = rowsOf('linear input', x, inDim);
  if (bias) requireLength('linear bias', bias, outDim);
  const out = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    const xBase = r * inDim;
    for (let o = 0; o < outDim; o++) {
      const wBase = o * inDim;
      let acc = 0;
      for (let i = 0; i < inDim; i++) acc += x[xBase + i] * weight[wBase + i];
      out[r * outDim + o] = bias ? acc + bias[o] : acc;
    }
  }
  return out;
}

/** silu(x) = x * sigmoid(x) = x / (1 + e^-x). */
export function silu(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] / (1 + Math.exp(-x[i]));
  return out;
}

/** The Llama MLP gate: silu(gate) * up, elementwise. */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  requireLength('swiglu up', up, gate.length);
  const out = new Float32Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    out[i] = Math.fround(g / (1 + Math.exp(-g))) * up[i];
  }
  return out;
}

/** Residual connection: a += b, in place; returns a. */
export function addInPlace(a: Float32Array, b: Float32Array): Float32Array {
  requireLength('residual', b, a.length);
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
}

/** Numerically stable softmax of x, in place (max subtracted first). */
export function softmaxInPlace(x: Float32Array): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.exp(x[i] - max);
    x[i] = e;
    sum += e;
  }
  for (let i = 0; i < x.length; i++) x[i] /= sum;
  return x;
}

/** Softmax of each row of x ([rows, width]) into a new array. */
export function softmax(x: Float32Array, width: number = x.length): Float32Array {
  const rows = rowsOf('softmax input', x, width);
  const out = Float32Array.from(x);
  for (let r = 0; r < rows; r++) softmaxInPlace(out.subarray(r * width, (r + 1) * width));
  return out;
}

export { argmax } from '../../domain/sampling.ts';

export interface AttentionInput {
  /** New queries after RoPE: [nTokens, nHeads, headDim]. */
  readonly q: Float32Array;
  /** Absolute position of each query token. */
  readonly positions: readonly number[];
  /** Cached keys after RoPE: [kvLength, nKvHeads, headDim], key j at position j. */
  readonly k: Float32Array;
  /** Cached values: [kvLength, nKvHeads, headDim]. */
  readonly v: Float32Array;
  /** Number of cached positions to read (the arrays may be longer: spare capacity). */
  readonly kvLength: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/** Query head h reads kv head floor(h / (nHeads / nKvHeads)): consecutive q heads share one kv head. */
export function kvHeadFor(head: number, nHeads: number, nKvHeads: number): number {
  return Math.floor(head / (nHeads / nKvHeads));
}

function checkAttention(input: AttentionInput): number {
  const { q, k, v, kvLength, nHeads, nKvHeads, headDim, positions } = input;
  if (nHeads % nKvHeads !== 0) {
    throw new InvalidRequestError('nHeads must be a multiple of nKvHeads', { nHeads, nKvHeads });
  }
  const nTokens = rowsOf('attention q', q, nHeads * headDim);
  requireLength('attention positions', positions, nTokens);
  const kvElements = kvLength * nKvHeads * headDim;
  if (k.length < kvElements || v.length < kvElements) {
    throw new InvalidRequestError('attention K/V hold fewer than kvLength positions', { kvLength });
  }
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 0 || p >= kvLength) {
      throw new InvalidRequestError(`query position ${p} has no cached key (kvLength ${kvLength})`, { position: p });
    }
  }
  return nTokens;
}

/**
 * Causal grouped-query attention of new queries against the cache: softmax(q k^T / sqrt(headDim))
 * v over keys at positions <= the query's position. Returns [nTokens, nHeads * headDim].
 */
export function attention(input: AttentionInput): Float32Array {
  const nTokens = checkAttention(input);
  const { q, k, v, nHeads, nKvHeads, headDim, positions } = input;
  const scale = 1 / Math.sqrt(headDim);
  const out = new Float32Array(nTokens * nHeads * headDim);
  const acc = new Float64Array(headDim);
  for (let t = 0; t < nTokens; t++) {
    const visible = positions[t] + 1;
    const scores = new Float32Array(visible);
    for (let h = 0; h < nHeads; h++) {
      const qBase = (t * nHeads + h) * headDim;
      const kvh = kvHeadFor(h, nHeads, nKvHeads);
      for (let j = 0; j < visible; j++) {
        const kBase = (j * nKvHeads + kvh) * headDim;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[qBase + i] * k[kBase + i];
        scores[j] = dot * scale;
      }
      softmaxInPlace(scores);
      acc.fill(0);
      for (let j = 0; j < visible; j++) {
        const vBase = (j * nKvHeads + kvh) * headDim;
        for (let i = 0; i < headDim; i++) acc[i] += scores[j] * v[vBase + i];
      }
      out.set(acc, qBase);
    }
  }
  return out;
}
