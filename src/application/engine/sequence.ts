import type { BlockId } from '../../domain/block-pool.ts';
import { tokenLogprob, type TokenLogprob } from '../../domain/logprobs.ts';
import type { GenerationLimits, SamplingParams } from '../../domain/sampling.ts';
import type { PlainError } from '../../domain/errors.ts';
import type { AgentBlocks, CompletedGeneration, FinishReason } from '../../domain/values.ts';
import type { TokenDelta } from '../../ports/inbound.ts';
import type { TextStream } from './text-stream.ts';

export type SequenceState = 'waiting' | 'running' | 'finished';

/** What a request wants beyond text: EOS ignored (exactly maxTokens), raw logits kept. */
export interface SequenceOutput {
  readonly ignoreEos: boolean;
  readonly keepLogits: boolean;
  /** A throwaway agent's request: its finished context is not checkpointed. */
  readonly scratch: boolean;
}

/**
 * One request inside the engine. `tokens` is prompt + generated; `computed` counts the tokens
 * whose KV is in `table`. After preemption `computed` drops to 0 and the sequence recomputes
 * (or restores) its context, keeping what it already generated.
 */
export class Sequence {
  state: SequenceState = 'waiting';
  table: BlockId[] = [];
  computed = 0;
  readonly generated: number[] = [];
  finishReason: FinishReason | null = null;
  finalText: string | null = null;
  /** The stop string that ended the request, if one did. */
  stopSequence: string | null = null;
  prefillComputed = 0;
  prefillReused = 0;
  admittedAt = -1;
  /** Was pushed out of the pool at least once (it may come back from a snapshot). */
  preempted = false;
  readonly listeners = new Set<(d: TokenDelta) => void>();
  /** Per generated token, when `topLogprobs` is not null. */
  readonly logprobs: TokenLogprob[] = [];
  /** Each sampled step's logits, when `output.keepLogits`. */
  readonly logitRows: Float32Array[] = [];

  constructor(
    readonly uid: string,
    readonly agentId: string,
    readonly promptIds: readonly number[],
    readonly sampling: SamplingParams,
    readonly limits: GenerationLimits,
    readonly stream: TextStream,
    readonly submittedAt: number,
    /** Alternatives to report per sampled token; null: no logprobs asked for. */
    readonly topLogprobs: number | null = null,
    readonly output: SequenceOutput = { ignoreEos: false, keepLogits: false, scratch: false },
  ) {}

  /** The step's logits are needed: for logprobs or to keep them. */
  get wantsLogits(): boolean {
    return this.topLogprobs !== null || this.output.keepLogits;
  }

  get tokens(): number[] {
    return [...this.promptIds, ...this.generated];
  }

  get length(): number {
    return this.promptIds.length + this.generated.length;
  }

  /** Tokens still to run through the model before the next sample (1 when decoding). */
  get pending(): number {
    return this.length - this.computed;
  }

  /** Blocks needed at most: the whole context plus every token still allowed. */
  maxBlocks(blockTokens: number): number {
    return Math.ceil((this.promptIds.length + this.limits.maxTokens) / blockTokens);
  }

  /** Keep the sampled token's log-probability when the request asked for logprobs. */
  recordLogprob(token: number, logits: Float32Array, text: (id: number) => string): TokenLogprob | undefined {
    if (this.topLogprobs === null) return undefined;
    const entry = tokenLogprob(logits, token, this.topLogprobs, text);
    this.logprobs.push(entry);
    return entry;
  }

  /** What the request's caller gets once it finished (`finalText` set). */
  completed(reason: FinishReason, blocks: AgentBlocks | undefined, error?: PlainError): CompletedGeneration {
    return {
      uid: this.uid,
      agentId: this.agentId,
      text: this.finalText ?? '',
      tokenIds: [...this.generated],
      tokenCount: this.generated.length,
      finishReason: reason,
      ...(this.topLogprobs !== null ? { logprobs: [...this.logprobs] } : {}),
      ...(this.stopSequence !== null ? { stopSequence: this.stopSequence } : {}),
      ...(this.output.keepLogits ? { logits: [...this.logitRows] } : {}),
      blocks,
      ...(error ? { error } : {}),
    };
  }

  /** A listener that throws (a page callback gone wrong) must not stop the engine or the others. */
  emit(delta: TokenDelta): void {
    for (const l of this.listeners) {
      try {
        l(delta);
      } catch {
        this.listeners.delete(l);
      }
    }
  }
}
