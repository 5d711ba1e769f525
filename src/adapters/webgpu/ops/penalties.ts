import penalizeWgsl from '../kernels/penalize.wgsl?raw';
import { InvalidRequestError } from '../../../domain/errors.ts';
import { penaltyEntries, type SamplingParams, type TokenHistory } from '../../../domain/sampling.ts';
import { dispatch, type Binding, type KernelContext, type Recorder } from '../dispatch.ts';
import type { KernelSource } from '../pipelines.ts';
import { requireBytes, requireCount } from './basic.ts';
import { SAMPLE_PARAMS_BYTES } from './sampling.ts';

/**
 * Repetition / presence / frequency penalties and the logit bias on the GPU (kernels/penalize.wgsl), applied in
 * place to the sampled rows' logits before `encodeSample`, and `penalizeCpu`, the host mirror.
 * The host lists each row's distinct tokens with their prompt and output counts (sparse: a few
 * hundred entries, not a vocab-sized mask), so the kernel touches only those logits.
 */
export const PENALIZE: KernelSource = { name: 'penalize', code: penalizeWgsl };

const WG = 64;

export interface PenaltyRow {
  readonly sampling: SamplingParams;
  readonly history?: TokenHistory;
}

/** Words per entry in kernels/penalize.wgsl: row, token, promptCount, outputCount, bias (f32), 3 padding. */
const ENTRY_WORDS = 8;

/** Entries for every row with a penalty or a logit bias on. */
export function packPenaltyEntries(rows: readonly PenaltyRow[], vocab: number): Uint32Array {
  const entries = rows.flatMap((r, row) => penaltyEntries(r.sampling, r.history).map((e) => ({ row, e })));
  const out = new Uint32Array(entries.length * ENTRY_WORDS);
  const asF32 = new Float32Array(out.buffer);
  entries.forEach(({ row, e }, i) => {
    if (!Number.isInteger(e.token) || e.token < 0 || e.token >= vocab) {
      throw new InvalidRequestError(`token ${e.token} of a penalty or logit bias is outside the vocabulary`, { token: e.token, vocab });
    }
    out.set([row, e.token, e.promptCount, e.outputCount], i * ENTRY_WORDS);
    asF32[i * ENTRY_WORDS + 4] = e.bias ?? 0;
  });
  return out;
}

export interface PenalizeArgs {
  /** f32 [rows, vocab], modified in place. */
  readonly logits: Binding;
  /** The packSampleParams records of the same rows. */
  readonly params: Binding;
  readonly entries: Uint32Array;
  readonly rows: number;
  readonly vocab: number;
}

/** Record the penalties; nothing is recorded when no row has any. */
export function encodePenalties(ctx: KernelContext, encoder: Recorder, a: PenalizeArgs, transients: GPUBuffer[]): void {
  const n = a.entries.length / ENTRY_WORDS;
  if (n === 0) return;
  requireCount('rows', a.rows);
  requireCount('vocab', a.vocab);
  requireBytes('penalize logits', a.logits, a.rows * a.vocab * 4);
  requireBytes('penalize params', a.params, a.rows * SAMPLE_PARAMS_BYTES);
  const entries = ctx.buffers.acquire('step:penaltyEntries', a.entries.byteLength);
  ctx.buffers.write(entries, a.entries);
  transients.push(entries);
  const groups = Math.ceil(n / WG);
  const maxX = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const groupsX = Math.min(groups, maxX);
  const uniforms = new Uint32Array([a.vocab, n, groupsX, 0]);
  dispatch(ctx, encoder, ctx.pipelines.get(PENALIZE), 'penalize', [a.logits, a.params, entries], [groupsX, Math.ceil(groups / groupsX)], uniforms, transients);
}

const fr = Math.fround;

/** The kernel's f32 operations on one row of logits, on the host (returns a new row). */
export function penalizeCpu(logits: Float32Array, row: PenaltyRow): Float32Array {
  const out = Float32Array.from(logits);
  const rep = fr(row.sampling.repetitionPenalty ?? 1);
  const presence = fr(row.sampling.presencePenalty ?? 0);
  const frequency = fr(row.sampling.frequencyPenalty ?? 0);
  for (const e of penaltyEntries(row.sampling, row.history)) {
    let l = out[e.token];
    if (rep !== 1 && e.promptCount + e.outputCount > 0) l = l > 0 ? fr(l / rep) : fr(l * rep);
    l = fr(l - fr(frequency * e.outputCount));
    if (e.outputCount > 0) l = fr(l - presence);
    out[e.token] = fr(l + fr(e.bias ?? 0));
  }
  return out;
}
