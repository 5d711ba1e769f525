import { InvalidRequestError } from './errors.ts';

/**
 * Continuous-batching policy: what each running sequence contributes to the next step.
 * Decode tokens go first (one per decoding sequence: they are latency-bound), then prefill
 * chunks in arrival order under the step's token budget. A sequence that gets no share waits;
 * it is never starved because older sequences finish prefill and fall to one token per step.
 */
export interface SchedulableSequence {
  readonly id: string;
  /** Tokens still to prefill (0 when decoding). */
  readonly pendingPrefill: number;
}

export interface SchedulePolicy {
  /** Max tokens per step across all sequences. */
  readonly maxBatchTokens: number;
  /** Max prompt tokens a single sequence contributes per step. */
  readonly maxPrefillChunk: number;
}

export interface ScheduledWork {
  readonly id: string;
  readonly tokens: number;
  readonly prefill: boolean;
}

export function validatePolicy(policy: SchedulePolicy): SchedulePolicy {
  for (const [k, v] of Object.entries(policy)) {
    if (!Number.isInteger(v) || v < 1) throw new InvalidRequestError(`${k} must be a positive integer`, { [k]: v });
  }
  return policy;
}

/** `running` is in admission order (oldest first). */
export function scheduleStep(running: readonly SchedulableSequence[], policy: SchedulePolicy): ScheduledWork[] {
  const work: ScheduledWork[] = [];
  let budget = policy.maxBatchTokens;
  for (const s of running) {
    if (s.pendingPrefill === 0 && budget > 0) {
      work.push({ id: s.id, tokens: 1, prefill: false });
      budget--;
    }
  }
  for (const s of running) {
    if (s.pendingPrefill === 0 || budget === 0) continue;
    const n = Math.min(s.pendingPrefill, policy.maxPrefillChunk, budget);
    work.push({ id: s.id, tokens: n, prefill: true });
    budget -= n;
  }
  return work;
}
