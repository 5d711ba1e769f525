/**
 * (b) Decode throughput with many agents. N agents (1, 8, 16) each prefill the same length of
 * prompt and then decode the same number of tokens through one BlockPoolBatchEngine. Only the
 * decode phase is timed: from the step after which every agent has its first token to the last
 * token. Aggregate tokens/s = N x (decoded tokens per agent) / decode time. Runs of the batch
 * sizes are interleaved and repeated, and medians reported, so that drift on a shared machine
 * affects every batch size alike. Agent 0 has the same prompt at every batch size, and its greedy
 * tokens must not depend on the batch.
 */
import type { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import { ids, median, ratio, round, table } from './lib.ts';

export interface ThroughputOptions {
  readonly batchSizes: readonly number[];
  readonly promptTokens: number;
  readonly decodeTokens: number;
  readonly reps: number;
}

interface Run {
  readonly decodeMs: number;
  readonly decodeSteps: number;
  readonly prefillMs: number;
  readonly agent0: number[];
}

export interface ThroughputResult {
  readonly model: string;
  readonly promptTokens: number;
  readonly tokensPerAgent: number;
  readonly batches: Array<{ agents: number; runs: Run[]; medianDecodeMs: number; decodeSteps: number; tokensPerSecond: number; perAgentTokensPerSecond: number; msPerStep: number; vsFirst: number }>;
  readonly ratios: Record<string, number>;
  readonly batchInvariant: boolean;
}

async function runBatch(backend: WebGpuBackend, agents: number, options: ThroughputOptions, tag: string): Promise<Run> {
  const engine = new BlockPoolBatchEngine(backend, null, { maxBatchTokens: Math.max(256, agents * options.promptTokens), maxPrefillChunk: 128, maxRunning: agents });
  const counts = new Map<string, number>();
  const uids: string[] = [];
  for (let i = 0; i < agents; i++) {
    const uid = await engine.submit({ agentId: `${tag}-${i}`, promptIds: ids(10 + i, options.promptTokens), maxTokens: options.decodeTokens + 1 });
    counts.set(uid, 0);
    engine.onToken(uid, () => counts.set(uid, (counts.get(uid) ?? 0) + 1));
    uids.push(uid);
  }
  const t0 = performance.now();
  while ([...counts.values()].some((c) => c === 0)) await engine.step();
  const t1 = performance.now();
  const stepsBefore = engine.stats().steps;
  const done = new Map<string, number[]>();
  while (done.size < agents) for (const g of await engine.step()) done.set(g.uid, [...g.tokenIds]);
  const t2 = performance.now();
  const decodeSteps = engine.stats().steps - stepsBefore;
  for (const uid of uids) if ((done.get(uid)?.length ?? 0) !== options.decodeTokens + 1) throw new Error(`throughput: ${uid} ended early`);
  engine.reset();
  return { decodeMs: t2 - t1, prefillMs: t1 - t0, decodeSteps, agent0: done.get(uids[0]) ?? [] };
}

export async function benchThroughput(backend: WebGpuBackend, options: ThroughputOptions): Promise<ThroughputResult> {
  await runBatch(backend, Math.max(...options.batchSizes), { ...options, decodeTokens: 2 }, 'warmup');
  const runs = new Map<number, Run[]>(options.batchSizes.map((n) => [n, []]));
  for (let rep = 0; rep < options.reps; rep++) {
    for (const n of options.batchSizes) runs.get(n)?.push(await runBatch(backend, n, options, `b${n}r${rep}`));
  }
  const base = median((runs.get(options.batchSizes[0]) ?? []).map((r) => r.decodeMs));
  const batches = options.batchSizes.map((n) => {
    const rs = runs.get(n) ?? [];
    const ms = median(rs.map((r) => r.decodeMs));
    const tokens = n * options.decodeTokens;
    return {
      agents: n,
      runs: rs.map((r) => ({ ...r, decodeMs: round(r.decodeMs, 1), prefillMs: round(r.prefillMs, 1) })),
      medianDecodeMs: round(ms, 1),
      decodeSteps: rs[0].decodeSteps,
      tokensPerSecond: round((tokens * 1000) / ms, 1),
      perAgentTokensPerSecond: round((options.decodeTokens * 1000) / ms, 2),
      msPerStep: round(ms / rs[0].decodeSteps, 1),
      vsFirst: round((n / options.batchSizes[0]) * (base / ms), 2),
    };
  });
  const tps = (n: number): number => batches.find((b) => b.agents === n)?.tokensPerSecond ?? NaN;
  const first = JSON.stringify([...runs.values()][0][0].agent0);
  return {
    model: backend.extractModelSpec().modelId,
    promptTokens: options.promptTokens,
    tokensPerAgent: options.decodeTokens,
    batches,
    ratios: Object.fromEntries(options.batchSizes.slice(1).map((n) => [`batch${n}OverBatch${options.batchSizes[0]}`, round(tps(n) / tps(options.batchSizes[0]))])),
    batchInvariant: [...runs.values()].every((rs) => rs.every((r) => JSON.stringify(r.agent0) === first)),
  };
}

export function formatThroughput(r: ThroughputResult): string {
  const base = r.batches[0];
  const out = table(
    `(b) Decode throughput: ${r.model}, ${r.tokensPerAgent} decode tokens per agent after a ${r.promptTokens}-token prompt`,
    'Aggregate decode tokens/s of N concurrent agents through BlockPoolBatchEngine (decode phase only, medians of interleaved runs); ratio vs 1 agent.',
    ['agents', 'runs', 'decode steps', 'decode ms', 'ms/step', 'tokens/s', 'per agent tok/s', `vs ${base.agents} agent`],
    r.batches.map((b) => [b.agents, b.runs.length, b.decodeSteps, b.medianDecodeMs, b.msPerStep, b.tokensPerSecond, b.perAgentTokensPerSecond, ratio(b.tokensPerSecond, base.tokensPerSecond)]),
  );
  return `${out}\nagent 0's greedy tokens are the same at every batch size: ${r.batchInvariant ? 'yes' : 'NO'}`;
}
