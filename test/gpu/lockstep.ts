import { BlockPool, type BlockId } from '../../src/domain/block-pool.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import { GREEDY, type SamplingParams } from '../../src/domain/sampling.ts';
import type { ModelBackendPort, SequenceStep } from '../../src/ports/outbound.ts';

/**
 * Test oracle, not a generation path: lock-step generation of a fixed set of sequences straight
 * over a ModelBackendPort (every step carries one prefill chunk or one decode token per
 * unfinished sequence, block tables chosen by the test). Backend tests use it to drive forward()
 * with exact control of batch composition and block placement, beneath the engine. Everything
 * the runtime serves (worker, CLI, server) goes through BlockPoolBatchEngine.
 */
export interface BatchRequest {
  readonly promptIds: readonly number[];
  readonly maxTokens: number;
  readonly sampling?: SamplingParams;
  readonly eosTokenIds?: readonly number[];
  /** Blocks to use instead of fresh ones from the pool (tests scatter them on purpose). */
  readonly blockTable?: readonly BlockId[];
}

export interface BatchResult {
  readonly tokens: number[];
  readonly finishReason: 'stop' | 'length';
  /** Logits of every sampled step, when asked for. */
  readonly logits: Float32Array[];
}

export interface BatchOptions {
  /** Max prompt tokens per sequence per step. Default: whole prompt at once. */
  readonly prefillChunk?: number;
  readonly returnLogits?: boolean;
  readonly onStep?: (stepIndex: number, tokensInStep: number) => void;
}

interface Live {
  readonly req: BatchRequest;
  readonly table: BlockId[];
  readonly owned: BlockId[];
  readonly result: { tokens: number[]; finishReason: 'stop' | 'length'; logits: Float32Array[] };
  position: number;
  done: boolean;
}

function reserve(pool: BlockPool, blockTokens: number, req: BatchRequest): { table: BlockId[]; owned: BlockId[] } {
  const need = Math.ceil((req.promptIds.length + req.maxTokens) / blockTokens);
  if (req.blockTable) {
    if (req.blockTable.length < need) throw new InvalidRequestError('given block table is too short', { need, given: req.blockTable.length });
    return { table: [...req.blockTable], owned: [] };
  }
  const owned = pool.allocate(need);
  return { table: owned, owned };
}

function nextStep(s: Live, chunk: number): SequenceStep {
  const prompt = s.req.promptIds;
  const inPrefill = s.position < prompt.length;
  const tokenIds = inPrefill ? prompt.slice(s.position, Math.min(prompt.length, s.position + chunk)) : [s.result.tokens[s.result.tokens.length - 1]];
  const sample = !inPrefill || s.position + tokenIds.length === prompt.length;
  const history = { promptIds: prompt, generated: s.result.tokens };
  return { tokenIds, startPosition: s.position, blockTable: s.table, sample, sampling: s.req.sampling ?? GREEDY, sampleStep: s.result.tokens.length, history };
}

function accept(s: Live, token: number, logits: Float32Array | undefined): void {
  s.result.tokens.push(token);
  if (logits) s.result.logits.push(logits);
  if (s.req.eosTokenIds?.includes(token)) {
    s.result.finishReason = 'stop';
    s.done = true;
  } else if (s.result.tokens.length >= s.req.maxTokens) {
    s.done = true;
  }
}

export async function generateBatch(
  backend: ModelBackendPort,
  pool: BlockPool,
  requests: readonly BatchRequest[],
  options: BatchOptions = {},
): Promise<BatchResult[]> {
  const blockTokens = backend.extractModelSpec().blockTokens;
  const live: Live[] = [];
  try {
    for (const req of requests) {
      if (req.promptIds.length === 0) throw new InvalidRequestError('empty prompt');
      live.push({ req, ...reserve(pool, blockTokens, req), result: { tokens: [], finishReason: 'length', logits: [] }, position: 0, done: false });
    }
    const chunk = options.prefillChunk ?? Number.MAX_SAFE_INTEGER;
    for (let step = 0; live.some((s) => !s.done); step++) {
      const active = live.filter((s) => !s.done);
      const steps = active.map((s) => nextStep(s, chunk));
      options.onStep?.(step, steps.reduce((n, s) => n + s.tokenIds.length, 0));
      const out = await backend.forward(steps, { returnLogits: options.returnLogits });
      const vocab = backend.vocabSize;
      let sampledIndex = 0;
      active.forEach((s, i) => {
        s.position += steps[i].tokenIds.length;
        if (!steps[i].sample) return;
        const logits = out.logits?.slice(sampledIndex * vocab, (sampledIndex + 1) * vocab);
        sampledIndex++;
        accept(s, out.nextTokens[i], logits);
      });
    }
    return live.map((s) => s.result);
  } finally {
    for (const s of live) pool.releaseAll(s.owned);
  }
}
