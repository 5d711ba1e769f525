import sampleWgsl from '../kernels/sample.wgsl?raw';
import { argmax } from '../../../domain/sampling.ts';
import { InvalidRequestError } from '../../../domain/errors.ts';
import { dispatch, type Binding, type KernelContext, type Recorder } from '../dispatch.ts';
import type { KernelSource } from '../pipelines.ts';
import { requireBytes, requireCount } from './basic.ts';

/**
 * Next-token sampling on the GPU (kernels/sample.wgsl, whose header documents the algorithm and
 * the params layout), and `sampleCpu`, a host mirror of the same algorithm and RNG. The mirror
 * repeats the kernel's f32 roundings and summation orders step for step; the one thing it cannot
 * repeat is the GPU's exp, which may differ by a few ulp, so a draw landing within ~1e-6 of a
 * cumulative boundary can differ between the two.
 */

export const SAMPLE: KernelSource = { name: 'sample', code: sampleWgsl };

/** Bytes of one per-sequence record in the params buffer (12 words; see sample.wgsl). */
export const SAMPLE_PARAMS_BYTES = 48;

const WG = 256;
const EXP_CUTOFF = -87;
const U32_MAX = 0xffffffff;
const MIN_NORMAL_F32 = 1.1754943508222875e-38;

export interface SampleRequest {
  /** 0 = greedy. */
  readonly temperature: number;
  /** 0 = off, 1 = greedy. */
  readonly topK: number;
  /** In (0, 1]; 1 = off. */
  readonly topP: number;
  readonly seed: number;
  /** RNG counter (e.g. the index of the token being generated). */
  readonly step: number;
  /** In [0, 1]; 0 (or absent) = off. */
  readonly minP?: number;
  /** Read by the penalties kernel (ops/penalties.ts); absent = off. */
  readonly repetitionPenalty?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
}

interface Packed {
  readonly invT: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  readonly step: number;
  readonly minP: number;
  /** ln(minP) rounded to f32 (0 when off: never read then). */
  readonly logMinP: number;
  readonly repetition: number;
  readonly presence: number;
  readonly frequency: number;
}

function optional(field: string, value: number | undefined, fallback: number, ok: (v: number) => boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new InvalidRequestError(`${field} is out of range`, { field, value });
  }
  return value;
}

function requireU32(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new InvalidRequestError(`${field} must be an integer in [0, 2^32)`, { field, value });
  }
}

/** Validate one request and reduce it to the values the kernel sees (f32-rounded). */
function packOne(p: SampleRequest): Packed {
  const { temperature, topK, topP, seed, step } = p;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidRequestError('temperature must be a finite number >= 0', { field: 'temperature', value: temperature });
  }
  requireU32('topK', topK);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) {
    throw new InvalidRequestError('topP must be in (0, 1]', { field: 'topP', value: topP });
  }
  requireU32('seed', seed);
  requireU32('step', step);
  let invT = temperature === 0 ? 0 : Math.fround(1 / temperature);
  // A temperature so small that 1/T overflows f32 is greedy in the limit; one so large that 1/T
  // is not a normal f32 would scale every logit to (nearly) zero and is refused.
  if (!Number.isFinite(invT)) invT = 0;
  else if (temperature > 0 && invT < MIN_NORMAL_F32) {
    throw new InvalidRequestError('temperature is too large', { field: 'temperature', value: temperature });
  }
  const minP = Math.fround(optional('minP', p.minP, 0, (v) => v >= 0 && v <= 1));
  return {
    invT,
    topK,
    topP: Math.fround(topP),
    seed,
    step,
    minP,
    logMinP: minP > 0 ? Math.fround(Math.log(minP)) : 0,
    repetition: Math.fround(optional('repetitionPenalty', p.repetitionPenalty, 1, (v) => v > 0)),
    presence: Math.fround(optional('presencePenalty', p.presencePenalty, 0, (v) => Math.abs(v) <= 2)),
    frequency: Math.fround(optional('frequencyPenalty', p.frequencyPenalty, 0, (v) => Math.abs(v) <= 2)),
  };
}

/** The params buffer content for `encodeSample` and `encodePenalties`: one record per sequence. */
export function packSampleParams(list: readonly SampleRequest[]): ArrayBuffer {
  const raw = new ArrayBuffer(Math.max(1, list.length) * SAMPLE_PARAMS_BYTES);
  const f = new Float32Array(raw);
  const u = new Uint32Array(raw);
  list.forEach((req, s) => {
    const p = packOne(req);
    const w = s * (SAMPLE_PARAMS_BYTES / 4);
    f[w] = p.invT;
    u[w + 1] = p.topK;
    f[w + 2] = p.topP;
    u[w + 3] = p.seed;
    u[w + 4] = p.step;
    f[w + 5] = p.minP;
    f[w + 6] = p.logMinP;
    f[w + 7] = p.repetition;
    f[w + 8] = p.presence;
    f[w + 9] = p.frequency;
  });
  return raw;
}

export interface SampleArgs {
  /** f32 [nSeqs, vocab]. */
  readonly logits: Binding;
  /** nSeqs records from packSampleParams. */
  readonly params: Binding;
  /** u32 [nSeqs] sampled token ids. */
  readonly out: Binding;
  readonly nSeqs: number;
  readonly vocab: number;
}

export function encodeSample(ctx: KernelContext, encoder: Recorder, args: SampleArgs, transients: GPUBuffer[]): void {
  const { logits, params, out, nSeqs, vocab } = args;
  requireCount('nSeqs', nSeqs);
  requireCount('vocab', vocab);
  const maxGroups = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  if (nSeqs > maxGroups) {
    throw new InvalidRequestError(`nSeqs ${nSeqs} exceeds the ${maxGroups} workgroups one dispatch allows`, { nSeqs, limit: maxGroups });
  }
  requireBytes('sample logits', logits, nSeqs * vocab * 4);
  requireBytes('sample params', params, nSeqs * SAMPLE_PARAMS_BYTES);
  requireBytes('sample out', out, nSeqs * 4);
  const uniforms = new Uint32Array([vocab, nSeqs, Math.ceil(vocab / WG), 0]);
  dispatch(ctx, encoder, ctx.pipelines.get(SAMPLE), 'sample', [logits, params, out], [nSeqs], uniforms, transients);
}

// ---------------------------------------------------------------------------------------------
// CPU mirror. Every f32 operation of the kernel is an f32 operation here (Math.fround or a
// Float32Array store), in the same order.

const fr = Math.fround;
const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

function keyOf(f: number): number {
  scratchF[0] = f;
  const b = scratchU[0];
  return (b & 0x80000000) !== 0 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

function floatOf(k: number): number {
  scratchU[0] = (k & 0x80000000) !== 0 ? k & 0x7fffffff : ~k >>> 0;
  return scratchF[0];
}

function weight(z: number, zmax: number): number {
  if (z === zmax) return 1;
  const d = fr(z - zmax);
  if (!(d >= EXP_CUTOFF)) return 0;
  return fr(Math.exp(d));
}

function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The kernel's uniform draw in [0, 1): 24 random bits of a counter-based hash of (seed, step). */
export function sampleUniform(seed: number, step: number): number {
  const h = pcg((seed ^ pcg((step + 0x9e3779b9) >>> 0)) >>> 0);
  return (h >>> 8) / 16777216;
}

/** The kernel's mass reduction: strided per-thread f32 sums, then the fixed tree. */
function massAbove(z: Float32Array, keys: Uint32Array, zmax: number, threshold: number): number {
  const partial = new Float32Array(WG);
  for (let t = 0; t < WG; t++) {
    let acc = 0;
    for (let i = t; i < z.length; i += WG) if (keys[i] >= threshold) acc = fr(acc + weight(z[i], zmax));
    partial[t] = acc;
  }
  for (let s = WG / 2; s > 0; s >>= 1) for (let t = 0; t < s; t++) partial[t] = partial[t] + partial[t + s];
  return partial[0];
}

function kthLargestKey(keys: Uint32Array, k: number): number {
  // The radix select finds exactly this value; a sort is the obviously right way to get it.
  const sorted = Uint32Array.from(keys).sort();
  return sorted[sorted.length - k];
}

function topPThreshold(z: Float32Array, keys: Uint32Array, zmax: number, lo0: number, hi0: number, topP: number): number {
  const goal = fr(topP * massAbove(z, keys, zmax, lo0));
  let lo = lo0;
  let hi = hi0;
  while (lo < hi) {
    const gap = hi - lo;
    const mid = lo + (gap >>> 1) + (gap & 1);
    if (massAbove(z, keys, zmax, mid) >= goal) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function draw(z: Float32Array, keys: Uint32Array, zmax: number, threshold: number, u: number): number {
  const vocab = z.length;
  const chunk = Math.ceil(vocab / WG);
  const sums = new Float32Array(WG);
  for (let t = 0; t < WG; t++) {
    let s = 0;
    for (let i = t * chunk; i < Math.min((t + 1) * chunk, vocab); i++) if (keys[i] >= threshold) s = fr(s + weight(z[i], zmax));
    sums[t] = s;
  }
  let total = 0;
  for (let t = 0; t < WG; t++) total = fr(total + sums[t]);
  const goal = fr(u * total);
  let chosen = -1;
  let before = 0;
  let lastNonempty = 0;
  let beforeLast = 0;
  let run = 0;
  for (let t = 0; t < WG; t++) {
    const next = fr(run + sums[t]);
    if (sums[t] > 0) {
      lastNonempty = t;
      beforeLast = run;
    }
    if (chosen < 0 && next > goal) {
      chosen = t;
      before = run;
    }
    run = next;
  }
  if (chosen < 0) {
    chosen = lastNonempty;
    before = beforeLast;
  }
  const rest = fr(goal - before);
  let last = -1;
  let acc = 0;
  for (let i = chosen * chunk; i < Math.min((chosen + 1) * chunk, vocab); i++) {
    if (keys[i] < threshold) continue;
    const w = weight(z[i], zmax);
    if (w > 0) last = i;
    acc = fr(acc + w);
    if (w > 0 && acc > rest) return i;
  }
  return last < 0 ? 0 : last;
}

/** The GPU kernel's algorithm and RNG for one row of logits, on the host (for tests). */
export function sampleCpu(logits: Float32Array, request: SampleRequest): number {
  requireCount('vocab', logits.length);
  const p = packOne(request);
  if (p.invT === 0 || p.topK === 1) return argmax(logits);
  const vocab = logits.length;
  const z = new Float32Array(vocab);
  const keys = new Uint32Array(vocab);
  let maxKey = 0;
  for (let i = 0; i < vocab; i++) {
    z[i] = logits[i] * p.invT;
    keys[i] = keyOf(z[i]);
    if (keys[i] > maxKey) maxKey = keys[i];
  }
  const zmax = floatOf(maxKey);
  let threshold = 0;
  if (p.topK !== 0 && p.topK < vocab) threshold = kthLargestKey(keys, p.topK);
  if (p.topP < 1) threshold = topPThreshold(z, keys, zmax, threshold, maxKey, p.topP);
  if (p.minP > 0) threshold = Math.max(threshold, keyOf(fr(zmax + p.logMinP)));
  return draw(z, keys, zmax, threshold, sampleUniform(p.seed, p.step));
}
