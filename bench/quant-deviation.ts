/**
 * KV quantization deviation: how much a restore from a q8 or q4 blob moves the next logits,
 * compared with a restore from an unquantized blob. Shared by `npm run bench` and
 * test/gpu/quant-deviation.test.ts.
 *
 * Method. Prefill a context of `contextTokens` ids into fresh blocks, read its K/V back
 * (backend.readBlocks, as the cache store does), encode it as an agent blob with quantization
 * none, q8 and q4, decode each blob and upload it into its own fresh blocks (backend.writeBlocks).
 * Then decode `steps` tokens from every copy in one batched forward per step (the batch must not
 * change any sequence's result), teacher-forced on the greedy path of the unquantized restore so
 * that every step compares logits for the same input. Per step and copy: max |logit - reference
 * logit|, and whether the greedy (argmax) token differs. Only the restored context is quantized:
 * the K/V of the decoded tokens is computed fresh, as after a real restore. The never-serialized
 * original blocks ride along as a control: restoring an unquantized f32 blob must be exact.
 */
import { decodeAgentBlob, encodeAgentBlob } from '../src/adapters/safetensors/agent-blob.ts';
import { BlockPool } from '../src/domain/block-pool.ts';
import { quantizationError, resolveGroupSize } from '../src/domain/kv-quant.ts';
import type { KvQuantization } from '../src/domain/model-cache-spec.ts';
import { GREEDY } from '../src/domain/sampling.ts';
import type { KvSnapshot, ModelBackendPort, SequenceStep } from '../src/ports/outbound.ts';
import { table } from './lib.ts';

export type Variant = 'original' | KvQuantization;
export const VARIANTS: readonly Variant[] = ['original', 'none', 'q8', 'q4'];

export interface VariantDeviation {
  readonly variant: Variant;
  readonly blobBytes: number | null;
  /** max |restored K/V - original K/V| over every layer (0 for original and none). */
  readonly kvMaxAbsError: number;
  readonly kvRmsError: number;
  /** max over steps of max |logit - reference logit|. */
  readonly maxAbsLogitDeviation: number;
  /** mean over steps of max |logit - reference logit|. */
  readonly meanMaxAbsLogitDeviation: number;
  /** max over steps of (max |logit deviation| / reference logit range at that step). */
  readonly maxRelativeDeviation: number;
  /** Steps whose greedy token differs from the reference's. */
  readonly greedyChangedSteps: number;
  /** First such step (0-based), or null: where free-running greedy decoding would diverge. */
  readonly firstChangedStep: number | null;
}

export interface QuantDeviationResult {
  readonly model: string;
  readonly contextTokens: number;
  readonly steps: number;
  readonly groupSize: number;
  /** Smallest reference logit range (max - min) over the steps. */
  readonly minLogitRange: number;
  readonly variants: readonly VariantDeviation[];
}

export interface QuantDeviationOptions {
  readonly contextIds: readonly number[];
  readonly steps: number;
  readonly agentId?: string;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function range(a: Float32Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of a) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return hi - lo;
}

function kvError(original: KvSnapshot, restored: KvSnapshot): { maxAbs: number; rms: number } {
  let maxAbs = 0;
  let sumSq = 0;
  let n = 0;
  for (const [a, b] of [...original.keys.map((k, i) => [k, restored.keys[i]]), ...original.values.map((v, i) => [v, restored.values[i]])]) {
    const e = quantizationError(a, b);
    maxAbs = Math.max(maxAbs, e.maxAbs);
    sumSq += e.rms * e.rms * a.length;
    n += a.length;
  }
  return { maxAbs, rms: n ? Math.sqrt(sumSq / n) : 0 };
}

export async function measureQuantDeviation(backend: ModelBackendPort, options: QuantDeviationOptions): Promise<QuantDeviationResult> {
  const spec = backend.extractModelSpec();
  const { contextIds, steps } = options;
  const ctx = contextIds.length;
  const pool = new BlockPool(backend.totalBlocks);
  const blocksEach = Math.ceil((ctx + steps) / spec.blockTokens);
  const tables = new Map<Variant, number[]>(VARIANTS.map((v) => [v, pool.allocate(blocksEach)]));
  try {
    const original = tables.get('original') as number[];
    const prefill = await backend.forward([{ tokenIds: contextIds, startPosition: 0, blockTable: original, sample: true, sampling: GREEDY, sampleStep: 0 }]);
    const first = prefill.nextTokens[0];
    const snapshot = await backend.readBlocks(original, ctx);

    const blobBytes = new Map<Variant, number | null>([['original', null]]);
    const kvErr = new Map<Variant, { maxAbs: number; rms: number }>([['original', { maxAbs: 0, rms: 0 }]]);
    for (const q of ['none', 'q8', 'q4'] as const) {
      const blob = encodeAgentBlob({ agentId: options.agentId ?? 'quant-probe', spec, tokenIds: contextIds, snapshot, quantization: q });
      const decoded = decodeAgentBlob(blob, spec);
      blobBytes.set(q, blob.byteLength);
      kvErr.set(q, kvError(snapshot, decoded.snapshot));
      await backend.writeBlocks(tables.get(q) as number[], decoded.snapshot);
    }

    const logits: Record<Variant, Float32Array[]> = { original: [], none: [], q8: [], q4: [] };
    const greedy: Record<Variant, number[]> = { original: [], none: [], q8: [], q4: [] };
    let input = first;
    for (let i = 0; i < steps; i++) {
      const batch: SequenceStep[] = VARIANTS.map((v) => ({
        tokenIds: [input],
        startPosition: ctx + i,
        blockTable: tables.get(v) as number[],
        sample: true,
        sampling: GREEDY,
        sampleStep: i + 1,
      }));
      const out = await backend.forward(batch, { returnLogits: true });
      const all = out.logits as Float32Array;
      const vocab = backend.vocabSize;
      VARIANTS.forEach((v, k) => {
        logits[v].push(all.slice(k * vocab, (k + 1) * vocab));
        greedy[v].push(out.nextTokens[k]);
      });
      // Teacher forcing on the reference: the greedy path after an unquantized restore.
      input = out.nextTokens[VARIANTS.indexOf('none')];
    }

    const ref = logits.none;
    const ranges = ref.map(range);
    const variants = VARIANTS.map((v): VariantDeviation => {
      const devs = logits[v].map((l, i) => maxAbsDiff(l, ref[i]));
      const changed = greedy[v].map((t, i) => t !== greedy.none[i]);
      const firstChanged = changed.indexOf(true);
      const e = kvErr.get(v) ?? { maxAbs: 0, rms: 0 };
      return {
        variant: v,
        blobBytes: blobBytes.get(v) ?? null,
        kvMaxAbsError: e.maxAbs,
        kvRmsError: e.rms,
        maxAbsLogitDeviation: Math.max(...devs),
        meanMaxAbsLogitDeviation: devs.reduce((s, d) => s + d, 0) / devs.length,
        maxRelativeDeviation: Math.max(...devs.map((d, i) => d / ranges[i])),
        greedyChangedSteps: changed.filter(Boolean).length,
        firstChangedStep: firstChanged < 0 ? null : firstChanged,
      };
    });
    return {
      model: spec.modelId,
      contextTokens: ctx,
      steps,
      groupSize: resolveGroupSize(spec.headDim),
      minLogitRange: Math.min(...ranges),
      variants,
    };
  } finally {
    for (const t of tables.values()) pool.releaseAll(t);
  }
}

export function formatQuantDeviation(results: readonly QuantDeviationResult[]): string {
  const rows = results.flatMap((r) =>
    r.variants
      .filter((v) => v.variant !== 'original')
      .map((v) => [
        r.model,
        v.variant,
        v.blobBytes ?? 0,
        v.kvMaxAbsError.toExponential(2),
        v.maxAbsLogitDeviation.toExponential(2),
        v.meanMaxAbsLogitDeviation.toExponential(2),
        `${(v.maxRelativeDeviation * 100).toFixed(3)}%`,
        `${v.greedyChangedSteps}/${r.steps}`,
        v.firstChangedStep ?? '-',
      ]),
  );
  const head = results[0];
  const out = table(
    `(d) KV quantization deviation: restore from a q8 / q4 blob vs an unquantized one, ${head?.contextTokens ?? 0}-token context, ${head?.steps ?? 0} teacher-forced decode steps`,
    'Max |logit - logit after an unquantized restore| per step (max and mean over steps), relative to that step\'s logit range, and steps whose greedy token changed.',
    ['model', 'blob', 'bytes', 'max |dKV|', 'max |dlogit|', 'mean |dlogit|', 'max rel.', 'greedy changed', 'first change'],
    rows,
  );
  const control = results.map((r) => `${r.model}: ${r.variants.find((v) => v.variant === 'original')?.maxAbsLogitDeviation ?? NaN}`).join(', ');
  const ranges = results.map((r) => `${r.model} ${r.minLogitRange.toFixed(2)} (group ${r.groupSize})`).join(', ');
  return `${out}\nsmallest logit range per model: ${ranges}\ncontrol, never-serialized blocks vs unquantized restore (must be 0): ${control}`;
}
