import { InvalidRequestError } from '../../domain/errors.ts';
import type { SamplingParams, TokenHistory } from '../../domain/sampling.ts';
import type { SequenceStep } from '../../ports/outbound.ts';

/**
 * One batched step flattened for the GPU: every new token of every sequence in one row list,
 * plus the per-token and per-sequence tables the kernels index. Built and validated on the host
 * before anything is recorded, so a bad step never reaches the device.
 */
export interface StepPlan {
  readonly nTokens: number;
  readonly nSeqs: number;
  readonly tokenIds: Uint32Array;
  readonly positions: Uint32Array;
  readonly tokenSeq: Uint32Array;
  readonly slots: Uint32Array;
  readonly blockTables: Uint32Array;
  readonly tableOffsets: Uint32Array;
  /** Rows (token indices) that get logits: the last new token of each sequence that samples, every new token of a `scoreAll` one. */
  readonly sampleRows: Uint32Array;
  /** Index in `steps` of the sequence of each sampled row. */
  readonly sampleSeqs: number[];
  readonly sampling: Array<SamplingParams & { readonly step: number; readonly history?: TokenHistory }>;
}

export interface PlanLimits {
  readonly vocabSize: number;
  readonly maxContext: number;
  readonly blockTokens: number;
  readonly totalBlocks: number;
}

function check(step: SequenceStep, index: number, limits: PlanLimits): void {
  const fail = (msg: string, extra: Record<string, unknown> = {}): never => {
    throw new InvalidRequestError(`sequence ${index}: ${msg}`, { sequence: index, ...extra });
  };
  if (step.tokenIds.length === 0) fail('no new tokens');
  if (!Number.isInteger(step.startPosition) || step.startPosition < 0) fail('bad startPosition', { startPosition: step.startPosition });
  const end = step.startPosition + step.tokenIds.length;
  if (end > limits.maxContext) fail(`context ${end} exceeds ${limits.maxContext}`, { end });
  if (end > step.blockTable.length * limits.blockTokens) fail('block table too short for its tokens', { end, blocks: step.blockTable.length });
  for (const id of step.tokenIds) if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) fail(`token id ${id} outside the vocabulary`, { id });
  for (const b of step.blockTable) if (!Number.isInteger(b) || b < 0 || b >= limits.totalBlocks) fail(`block id ${b} outside the pool`, { block: b });
}

export function planStep(steps: readonly SequenceStep[], limits: PlanLimits): StepPlan {
  if (steps.length === 0) throw new InvalidRequestError('a step needs at least one sequence');
  steps.forEach((s, i) => check(s, i, limits));
  const nTokens = steps.reduce((n, s) => n + s.tokenIds.length, 0);
  const tableLen = steps.reduce((n, s) => n + s.blockTable.length, 0);
  const plan = {
    tokenIds: new Uint32Array(nTokens),
    positions: new Uint32Array(nTokens),
    tokenSeq: new Uint32Array(nTokens),
    slots: new Uint32Array(nTokens),
    blockTables: new Uint32Array(Math.max(1, tableLen)),
    tableOffsets: new Uint32Array(steps.length),
  };
  const sampleRows: number[] = [];
  const sampleSeqs: number[] = [];
  const sampling: StepPlan['sampling'] = [];
  let row = 0;
  let tableAt = 0;
  steps.forEach((s, seq) => {
    plan.tableOffsets[seq] = tableAt;
    plan.blockTables.set(s.blockTable, tableAt);
    tableAt += s.blockTable.length;
    s.tokenIds.forEach((id, i) => {
      const pos = s.startPosition + i;
      plan.tokenIds[row] = id;
      plan.positions[row] = pos;
      plan.tokenSeq[row] = seq;
      plan.slots[row] = s.blockTable[Math.floor(pos / limits.blockTokens)] * limits.blockTokens + (pos % limits.blockTokens);
      row++;
    });
    if (s.sample) {
      const first = s.scoreAll ? row - s.tokenIds.length : row - 1;
      for (let r = first; r < row; r++) {
        sampleRows.push(r);
        sampleSeqs.push(seq);
        sampling.push({ ...s.sampling, step: s.sampleStep, history: s.history });
      }
    }
  });
  return { ...plan, nTokens, nSeqs: steps.length, sampleRows: Uint32Array.from(sampleRows), sampleSeqs, sampling };
}
