import { BlockPool, type BlockId } from '../domain/block-pool.ts';
import { InvalidRequestError } from '../domain/errors.ts';
import type { KvQuantization } from '../domain/model-cache-spec.ts';
import { GREEDY } from '../domain/sampling.ts';
import type { KvBlobCodecPort, ModelBackendPort, SequenceStep } from '../ports/outbound.ts';

/**
 * Perplexity of a model over a token sequence by teacher forcing through a ModelBackendPort.
 *
 * The text is cut into windows that fit the model's context. A window opens with BOS when the
 * model has one (so every text token is scored); without BOS it repeats the previous window's
 * last token as its opening, which is then context only. Windows run side by side; each step
 * feeds a slice of every window as a prefill chunk that asks for logits at every position
 * (`scoreAll`), so a 1k-token window takes a handful of steps, not a thousand.
 *
 * With `restoreEvery`, after every that many positions each window's KV is read back, written
 * to an agent blob at `quantization` through the codec, decoded, and written into its blocks:
 * later positions then attend to what an agent restored from storage would hold.
 */
export interface PerplexityOptions {
  /** Positions per window (inputs), at most the model's context. */
  readonly window: number;
  readonly bosTokenId: number | null;
  /** Windows per forward step. Default 16. */
  readonly parallel?: number;
  /** Positions per window per forward step (teacher-forced with logits at each). Default 64. */
  readonly chunk?: number;
  /** Positions between persist/restore round trips; 0 (default) never persists. */
  readonly restoreEvery?: number;
  readonly codec?: KvBlobCodecPort;
  readonly quantization?: KvQuantization;
}

export interface PerplexityResult {
  /** Sum of -ln p(token) over the scored tokens. */
  readonly nllNats: number;
  readonly scoredTokens: number;
  readonly windows: number;
  readonly restores: number;
  /** Largest blob written, and its bytes per cached token (0 when nothing was persisted). */
  readonly blobBytes: number;
  readonly blobBytesPerToken: number;
}

interface Window {
  readonly inputs: readonly number[];
  readonly targets: readonly number[];
}

/** Windows of at most `window` inputs whose targets cover ids (all of them with BOS, else ids[1..]). */
export function planWindows(ids: readonly number[], window: number, bosTokenId: number | null): Window[] {
  if (!Number.isInteger(window) || window < 2) throw new InvalidRequestError('window must be an integer >= 2', { window });
  const out: Window[] = [];
  let start = bosTokenId === null ? 1 : 0;
  while (start < ids.length) {
    const end = Math.min(ids.length, start + window);
    const opening = bosTokenId ?? ids[start - 1];
    out.push({ inputs: [opening, ...ids.slice(start, end - 1)], targets: ids.slice(start, end) });
    start = end;
  }
  return out;
}

/** -ln softmax(row)[target], computed stably in f64. */
export function tokenNll(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return Math.log(sum) + max - row[target];
}

interface Tally {
  nll: number;
  scored: number;
  restores: number;
  blobBytes: number;
  blobTokens: number;
}

async function roundTrip(backend: ModelBackendPort, win: Window, table: readonly BlockId[], tokens: number, options: PerplexityOptions, tally: Tally): Promise<void> {
  const codec = options.codec;
  if (!codec) throw new InvalidRequestError('restoreEvery needs a blob codec');
  const spec = backend.extractModelSpec();
  const snapshot = await backend.readBlocks(table, tokens);
  const bytes = codec.encode({ agentId: 'eval', spec, tokenIds: win.inputs.slice(0, tokens), snapshot, quantization: options.quantization ?? 'none' });
  const decoded = codec.decode(bytes, spec);
  await backend.writeBlocks(table, decoded.snapshot);
  tally.restores++;
  if (bytes.byteLength > tally.blobBytes) {
    tally.blobBytes = bytes.byteLength;
    tally.blobTokens = tokens;
  }
}

interface Stepping {
  /** Positions per window per forward step. */
  readonly chunk: number;
  /** Positions between persist/restore round trips; 0 never. */
  readonly every: number;
}

/** End (exclusive) of the next slice from t: a chunk, cut at the next restore boundary. */
function sliceEnd(t: number, s: Stepping): number {
  const byChunk = t + s.chunk;
  return s.every > 0 ? Math.min(byChunk, (Math.floor(t / s.every) + 1) * s.every) : byChunk;
}

async function runGroup(backend: ModelBackendPort, pool: BlockPool, group: readonly Window[], options: PerplexityOptions, stepping: Stepping, tally: Tally): Promise<void> {
  const blockTokens = backend.extractModelSpec().blockTokens;
  const vocab = backend.vocabSize;
  const tables = group.map((w) => pool.allocate(Math.ceil(w.inputs.length / blockTokens)));
  try {
    const longest = Math.max(...group.map((w) => w.inputs.length));
    for (let t = 0; t < longest; ) {
      const next = sliceEnd(t, stepping);
      const live = group.map((w, i) => i).filter((i) => t < group[i].inputs.length);
      // Teacher forcing: a whole slice per window in one step, with logits at every position.
      const steps: SequenceStep[] = live.map((i) => ({
        tokenIds: group[i].inputs.slice(t, next), startPosition: t, blockTable: tables[i],
        sample: true, scoreAll: true, sampling: GREEDY, sampleStep: t,
      }));
      const out = await backend.forward(steps, { returnLogits: true });
      const logits = out.logits;
      if (!logits) throw new InvalidRequestError('the backend returned no logits');
      let row = 0;
      steps.forEach((step, k) => {
        const targets = group[live[k]].targets;
        for (let j = 0; j < step.tokenIds.length; j++, row++) {
          tally.nll += tokenNll(logits.subarray(row * vocab, (row + 1) * vocab), targets[t + j]);
          tally.scored++;
        }
      });
      if (stepping.every > 0 && next % stepping.every === 0) {
        for (const i of live) if (next < group[i].inputs.length) await roundTrip(backend, group[i], tables[i], next, options, tally);
      }
      t = next;
    }
  } finally {
    for (const table of tables) pool.releaseAll(table);
  }
}

/** Logits read back per step are capped so a 152k vocabulary never needs a huge buffer. */
const LOGIT_BYTES_PER_STEP = 64 * 1024 * 1024;
/** New tokens per step across all windows: bounds the activations like a prefill chunk. */
const TOKENS_PER_STEP = 1024;
const DEFAULT_CHUNK = 64;

export async function evaluatePerplexity(backend: ModelBackendPort, ids: readonly number[], options: PerplexityOptions): Promise<PerplexityResult> {
  if (options.window > backend.maxContext) {
    throw new InvalidRequestError(`window ${options.window} exceeds the model's context ${backend.maxContext}`, { window: options.window });
  }
  const windows = planWindows(ids, options.window, options.bosTokenId);
  if (windows.length === 0) throw new InvalidRequestError('the text has no token to score');
  const pool = new BlockPool(backend.totalBlocks);
  const blockTokens = backend.extractModelSpec().blockTokens;
  // As many windows side by side as the KV pool holds, up to `parallel`.
  const fit = Math.floor(backend.totalBlocks / Math.ceil(options.window / blockTokens));
  if (fit < 1) throw new InvalidRequestError('the KV pool cannot hold one window', { window: options.window });
  const every = options.restoreEvery ?? 0;
  const rowsCap = Math.max(1, Math.min(TOKENS_PER_STEP, Math.floor(LOGIT_BYTES_PER_STEP / (backend.vocabSize * 4))));
  const stepping: Stepping = { every, chunk: Math.min(options.chunk ?? DEFAULT_CHUNK, every > 0 ? every : Infinity, rowsCap, options.window) };
  const parallel = Math.max(1, Math.min(options.parallel ?? 16, fit, Math.floor(rowsCap / stepping.chunk)));
  const tally: Tally = { nll: 0, scored: 0, restores: 0, blobBytes: 0, blobTokens: 0 };
  for (let g = 0; g < windows.length; g += parallel) {
    await runGroup(backend, pool, windows.slice(g, g + parallel), options, stepping, tally);
  }
  return {
    nllNats: tally.nll,
    scoredTokens: tally.scored,
    windows: windows.length,
    restores: tally.restores,
    blobBytes: tally.blobBytes,
    blobBytesPerToken: tally.blobTokens === 0 ? 0 : tally.blobBytes / tally.blobTokens,
  };
}
