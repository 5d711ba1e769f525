/**
 * decodeProfile: what one decode step costs, per model, measured on the runtime as it is.
 * - WebGPU work per step: compute passes, dispatches, bind groups, writeBuffer calls and bytes,
 *   submits (bench/gpu-counters.ts wraps the device; nothing in the runtime is changed for it);
 * - host ms per step: from the step's first WebGPU call to its submit (encoding + submit);
 * - step ms: the whole forward() call, readback of the sampled token included;
 * - bytes read per token: every weight buffer (an untied embedding table counts whole, though a
 *   step reads one row of it) plus the K and V of the context at the stated length;
 * - the roofline: the tokens/s that reading those bytes would allow at a stated bandwidth;
 * - GPU ms per kernel for one step, from timestamp queries where the adapter has them.
 * Speeds on this machine's CPU adapter say little in absolute terms; the counts are exact.
 */
import { GREEDY } from '../src/domain/sampling.ts';
import type { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import type { SequenceStep } from '../src/ports/outbound.ts';
import { passOptions } from '../src/adapters/webgpu/dispatch.ts';
import { GpuCounters, type KernelTime, type StepCounts } from './gpu-counters.ts';
import { ids, median, round, table } from './lib.ts';

/** Bandwidths the roofline is stated at (GB/s): an M2-class laptop and an M2 Max / RTX-class GPU. */
export const ROOFLINE_GBPS = [100, 400] as const;

export interface DecodeProfileOptions {
  readonly promptTokens: number;
  readonly decodeSteps: number;
}

export interface DecodeProfileRow {
  readonly model: string;
  readonly layers: number;
  readonly perStep: StepCounts;
  readonly dispatchesPerLayer: number;
  readonly medianStepMs: number;
  readonly medianHostMs: number;
  readonly weightBytes: number;
  readonly kvBytesPerToken: number;
  readonly context: number;
  readonly bytesPerToken: number;
  readonly rooflineTokensPerSecond: Record<string, number>;
  readonly measuredTokensPerSecond: number;
  readonly kernels: KernelTime[];
}

function step(tokens: readonly number[], start: number, blockTokens: number): SequenceStep {
  const blocks = Math.ceil((start + tokens.length) / blockTokens);
  return { tokenIds: tokens, startPosition: start, blockTable: Array.from({ length: blocks }, (_, i) => i), sample: true, sampling: GREEDY, sampleStep: 0 };
}

/**
 * One more decode step with a compute pass per kernel (the runtime's passPerDispatch switch), for
 * per-kernel GPU times: from timestamps, or with every pass submitted alone where they read zero.
 */
async function perKernelStep(backend: WebGpuBackend, counters: GpuCounters, token: number[], start: number, blockTokens: number): Promise<KernelTime[]> {
  passOptions.passPerDispatch = true;
  try {
    counters.reset();
    await backend.forward([step(token, start, blockTokens)]);
    const stamped = await counters.kernelTimes();
    if (stamped.reduce((sum, k) => sum + k.ms, 0) > 0) return stamped;
    counters.reset();
    counters.splitPasses = true;
    await backend.forward([step(token, start + 1, blockTokens)]);
    return await counters.splitTimes();
  } finally {
    counters.splitPasses = false;
    passOptions.passPerDispatch = false;
  }
}

export async function profileDecode(model: string, backend: WebGpuBackend, counters: GpuCounters, options: DecodeProfileOptions): Promise<DecodeProfileRow> {
  const spec = backend.extractModelSpec();
  const prompt = ids(3, options.promptTokens);
  let next = (await backend.forward([step(prompt, 0, spec.blockTokens)])).nextTokens[0];
  const stepMs: number[] = [];
  const hostMs: number[] = [];
  let counts = GpuCounters.zero();
  for (let i = 0; i < options.decodeSteps; i++) {
    counters.reset();
    const t0 = performance.now();
    next = (await backend.forward([step([next], prompt.length + i, spec.blockTokens)])).nextTokens[0];
    stepMs.push(performance.now() - t0);
    counts = counters.snapshot();
    hostMs.push(counts.hostMs);
  }
  const kernels = await perKernelStep(backend, counters, [next], prompt.length + options.decodeSteps, spec.blockTokens);
  const context = prompt.length + options.decodeSteps;
  // The per-kernel steps write one or two more positions; the context reported is the timed steps'.
  const kvBytesPerToken = spec.nLayers * 2 * spec.nKvHeads * spec.headDim * (spec.dtype === 'f16' ? 2 : 4);
  const bytesPerToken = backend.weightBytes + kvBytesPerToken * context;
  const roofline = Object.fromEntries(ROOFLINE_GBPS.map((g) => [`${g}GBps`, round((g * 1e9) / bytesPerToken, 0)]));
  const medianStepMs = median(stepMs);
  return {
    model,
    layers: spec.nLayers,
    perStep: counts,
    dispatchesPerLayer: round(counts.dispatches / spec.nLayers, 1),
    medianStepMs: round(medianStepMs, 1),
    medianHostMs: round(median(hostMs), 2),
    weightBytes: backend.weightBytes,
    kvBytesPerToken,
    context,
    bytesPerToken,
    rooflineTokensPerSecond: roofline,
    measuredTokensPerSecond: round(1000 / medianStepMs, 2),
    kernels,
  };
}

export function formatDecodeProfile(rows: readonly DecodeProfileRow[]): string {
  const main = table(
    'decodeProfile: one decode step, batch 1',
    `WebGPU work per step (counted on the device), host ms = encode + submit, bytes read per token = weights + KV at the context; roofline at ${ROOFLINE_GBPS.join(' and ')} GB/s`,
    ['model', 'layers', 'passes', 'dispatches', 'per layer', 'bind groups', 'writeBuffer', 'host ms', 'step ms', 'MB/token', ...ROOFLINE_GBPS.map((g) => `roofline tok/s @${g}`), 'measured tok/s'],
    rows.map((r) => [r.model, r.layers, r.perStep.passes, r.perStep.dispatches, r.dispatchesPerLayer, r.perStep.bindGroups, r.perStep.writeBuffers, r.medianHostMs, r.medianStepMs, round(r.bytesPerToken / 1e6, 2), ...ROOFLINE_GBPS.map((g) => r.rooflineTokensPerSecond[`${g}GBps`]), r.measuredTokensPerSecond]),
  );
  const kernelRows = rows.flatMap((r) => {
    const total = r.kernels.reduce((s, k) => s + k.ms, 0);
    return r.kernels.map((k) => [r.model, k.kernel, k.passes, round(k.ms, 2), `${round((100 * k.ms) / total, 1)}%`]);
  });
  if (kernelRows.length === 0) return `${main}\n(no timestamp-query on this adapter: no per-kernel times)\n`;
  return `${main}\n${table('decodeProfile: GPU time per kernel, one decode step', 'from timestamp queries around every compute pass, or (where they read zero, as on SwiftShader) from each pass submitted alone', ['model', 'kernel', 'passes', 'GPU ms', 'share'], kernelRows)}`;
}
