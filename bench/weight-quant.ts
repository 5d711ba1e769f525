/**
 * Weight and KV precision deviation: how far the logits and greedy tokens of q8 / q4 weights
 * (quantized at load) and of the f16 KV pool move from the reference (the checkpoint's own
 * weights, f32 KV). Each variant changes exactly one thing against that reference.
 *
 * Method. Per fixture, one backend per variant. Prefill the same context on each, then decode
 * `steps` tokens teacher-forced on the reference's greedy path (every variant is fed the token
 * the reference picked), so every step compares logits for the same input. Per step: max |logit -
 * reference logit|, that over the step's reference logit range, and whether the greedy (argmax)
 * token agrees. GPU weight bytes come from the backend's load report.
 */
import { join } from 'node:path';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import type { GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend, type WebGpuBackendOptions } from '../src/adapters/webgpu/webgpu-backend.ts';
import { GREEDY } from '../src/domain/sampling.ts';
import { MODELS_DIR, table, type Fixture } from './lib.ts';

export const PRECISION_VARIANTS: Readonly<Record<string, WebGpuBackendOptions>> = {
  reference: { kvDtype: 'f32' },
  'f16 KV': { kvDtype: 'f16' },
  'q8 weights': { kvDtype: 'f32', weights: 'q8' },
  'q4 weights': { kvDtype: 'f32', weights: 'q4' },
};

export interface PrecisionRow {
  readonly model: string;
  readonly variant: string;
  readonly weightBytes: number;
  readonly maxAbsLogitDeviation: number;
  readonly meanMaxAbsLogitDeviation: number;
  readonly maxRelativeDeviation: number;
  /** Steps (prefill's next token included) whose greedy token equals the reference's. */
  readonly greedyAgree: number;
  readonly steps: number;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
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
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return hi - lo;
}

/** Logits of the prefill's last token and of `steps` decode steps fed `path` (or its own greedy picks). */
async function run(backend: WebGpuBackend, context: readonly number[], steps: number, path?: readonly number[]): Promise<Float32Array[]> {
  const blocks = Math.ceil((context.length + steps) / backend.extractModelSpec().blockTokens);
  const blockTable = Array.from({ length: blocks }, (_, i) => i);
  const rows: Float32Array[] = [];
  let out = await backend.forward([{ tokenIds: [...context], startPosition: 0, blockTable, sample: true, sampling: GREEDY, sampleStep: 0 }], { returnLogits: true });
  rows.push(out.logits as Float32Array);
  for (let i = 0; i < steps; i++) {
    const input = path ? path[i] : argmax(rows[i]);
    out = await backend.forward([{ tokenIds: [input], startPosition: context.length + i, blockTable, sample: true, sampling: GREEDY, sampleStep: i + 1 }], { returnLogits: true });
    rows.push(out.logits as Float32Array);
  }
  return rows;
}

export async function measurePrecision(gpu: GpuContext, fixture: Fixture, context: readonly number[], steps: number): Promise<PrecisionRow[]> {
  const load = (options: WebGpuBackendOptions): Promise<WebGpuBackend> =>
    WebGpuBackend.load(gpu, new FsModelSource(join(MODELS_DIR, fixture)), { modelId: fixture, kvBudgetBytes: 1 << 20, ...options });
  const rows: PrecisionRow[] = [];
  let ref: Float32Array[] = [];
  for (const [variant, options] of Object.entries(PRECISION_VARIANTS)) {
    const backend = await load(options);
    try {
      const logits = await run(backend, context, steps, variant === 'reference' ? undefined : ref.slice(0, steps).map(argmax));
      if (variant === 'reference') ref = logits;
      const devs = logits.map((l, i) => maxAbsDiff(l, ref[i]));
      rows.push({
        model: fixture,
        variant,
        weightBytes: backend.loadReport().gpu_bytes.weights,
        maxAbsLogitDeviation: Math.max(...devs),
        meanMaxAbsLogitDeviation: devs.reduce((s, d) => s + d, 0) / devs.length,
        maxRelativeDeviation: Math.max(...devs.map((d, i) => d / range(ref[i]))),
        greedyAgree: logits.filter((l, i) => argmax(l) === argmax(ref[i])).length,
        steps: logits.length,
      });
    } finally {
      backend.dispose();
    }
  }
  return rows;
}

export function formatPrecision(rows: readonly PrecisionRow[], contextTokens: number): string {
  const refBytes = new Map(rows.filter((r) => r.variant === 'reference').map((r) => [r.model, r.weightBytes]));
  return table(
    `(e) Weight and KV precision: q8 / q4 weights (quantized at load, 32-element groups, f16 scales) and f16 KV vs the checkpoint's weights with f32 KV, ${contextTokens}-token context, teacher-forced decode`,
    'Max |logit - reference logit| per step (max and mean over steps), relative to that step\'s logit range, and steps whose greedy token agrees; GPU weight bytes and their ratio to the reference.',
    ['model', 'variant', 'weight bytes', 'vs ref', 'max |dlogit|', 'mean |dlogit|', 'max rel.', 'greedy agree'],
    rows.map((r) => [
      r.model,
      r.variant,
      r.weightBytes,
      `${(r.weightBytes / (refBytes.get(r.model) ?? NaN)).toFixed(3)}x`,
      r.maxAbsLogitDeviation.toExponential(2),
      r.meanMaxAbsLogitDeviation.toExponential(2),
      `${(r.maxRelativeDeviation * 100).toFixed(3)}%`,
      `${r.greedyAgree}/${r.steps}`,
    ]),
  );
}
