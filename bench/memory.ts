/**
 * (c) Memory. First the budgets of the real models the twins copy (bench/model-memory.ts: bytes
 * of weights by format and of KV per 1,000 tokens by dtype, at full layer count, from config.json,
 * beside WebLLM q4f16_1 and transformers.js q4f16 derived from their formats). Then KV blocks held by 16 agents that share a 200-token system prompt, with prefix
 * sharing (one engine: the prefix's full blocks are held once, reference counted) vs without
 * (each agent alone in its own pool, measured once and counted 16 times); bytes are
 * usedBlocks x bytesPerBlock. Then one agent's blob at rest, unquantized vs q8 vs q4.
 */
import { encodeAgentBlob } from '../src/adapters/safetensors/agent-blob.ts';
import type { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import type { PoolStats } from '../src/domain/block-pool.ts';
import { bytesForTokens, bytesPerBlock } from '../src/domain/model-cache-spec.ts';
import { ids, kib, ratio, round, table } from './lib.ts';
import { formatModelMemory, modelMemoryTable, type ModelMemory } from './model-memory.ts';

export interface MemoryOptions {
  readonly agents: number;
  readonly systemTokens: number;
  readonly suffixTokens: number;
  readonly maxTokens: number;
}

export interface MemoryResult {
  /** Real models at full layer count, computed from their configs (no model is run). */
  readonly models: readonly ModelMemory[];
  readonly model: string;
  readonly bytesPerBlock: number;
  readonly agents: number;
  readonly systemTokens: number;
  readonly suffixTokens: number;
  readonly shared: { readonly peak: PoolStats; readonly idle: PoolStats; readonly bytesPeak: number; readonly bytesIdle: number; readonly prefillComputed: number };
  readonly unshared: { readonly blocksPerAgent: number; readonly blocks: number; readonly bytes: number; readonly prefillComputed: number };
  readonly ratios: Record<string, number>;
  readonly blob: { readonly tokens: number; readonly kvPayloadBytes: number; readonly none: number; readonly q8: number; readonly q4: number; readonly ratios: Record<string, number> };
}

export async function benchMemory(backend: WebGpuBackend, options: MemoryOptions): Promise<MemoryResult> {
  const spec = backend.extractModelSpec();
  const system = ids(42, options.systemTokens);
  const promptOf = (i: number): number[] => [...system, ...ids(100 + i, options.suffixTokens)];
  const engineOptions = { maxBatchTokens: 512, maxPrefillChunk: 256, maxRunning: options.agents };

  // With sharing: agent 0 first (its finished context indexes the prefix), then the others at once.
  const e = new BlockPoolBatchEngine(backend, null, engineOptions);
  const first = await e.generate({ agentId: 'mem-0', promptIds: promptOf(0), maxTokens: options.maxTokens });
  await e.run();
  let prefillComputed = e.accounting(first.uid)?.prefillComputed ?? 0;
  const uids: string[] = [];
  for (let i = 1; i < options.agents; i++) uids.push(await e.submit({ agentId: `mem-${i}`, promptIds: promptOf(i), maxTokens: options.maxTokens }));
  await e.step();
  const peak = e.stats().pool;
  while (e.hasPendingWork()) await e.step();
  const idle = e.stats().pool;
  for (const uid of uids) prefillComputed += e.accounting(uid)?.prefillComputed ?? 0;

  // One agent's blob at rest: its idle cache read back from the GPU, encoded three ways.
  const agent = e.kv.agentBlocks('mem-0');
  if (!agent) throw new Error('memory: agent mem-0 has no cache');
  const snapshot = await backend.readBlocks(agent.blockTable, agent.tokenIds.length);
  const blob = (quantization: 'none' | 'q8' | 'q4'): number =>
    encodeAgentBlob({ agentId: 'mem-0', spec, tokenIds: agent.tokenIds, snapshot, quantization }).byteLength;
  const sizes = { none: blob('none'), q8: blob('q8'), q4: blob('q4') };
  e.reset();

  // Without sharing: one agent alone in its own pool holds this many blocks.
  const solo = new BlockPoolBatchEngine(backend, null, engineOptions);
  const soloRun = await solo.generate({ agentId: 'mem-solo', promptIds: promptOf(0), maxTokens: options.maxTokens });
  await solo.run();
  const blocksPerAgent = solo.stats().pool.usedBlocks;
  const soloComputed = solo.accounting(soloRun.uid)?.prefillComputed ?? 0;
  solo.reset();

  const bpb = bytesPerBlock(spec);
  const unsharedBlocks = blocksPerAgent * options.agents;
  return {
    models: modelMemoryTable(),
    model: spec.modelId,
    bytesPerBlock: bpb,
    agents: options.agents,
    systemTokens: options.systemTokens,
    suffixTokens: options.suffixTokens,
    shared: { peak, idle, bytesPeak: peak.usedBlocks * bpb, bytesIdle: idle.usedBlocks * bpb, prefillComputed },
    unshared: { blocksPerAgent, blocks: unsharedBlocks, bytes: unsharedBlocks * bpb, prefillComputed: soloComputed * options.agents },
    ratios: {
      unsharedOverSharedIdle: round(unsharedBlocks / idle.usedBlocks),
      logicalOverUsedIdle: round(idle.logicalBlocks / idle.usedBlocks),
      prefillUnsharedOverShared: round((soloComputed * options.agents) / prefillComputed),
    },
    blob: {
      tokens: agent.tokenIds.length,
      kvPayloadBytes: bytesForTokens(spec, agent.tokenIds.length),
      ...sizes,
      ratios: { noneOverQ8: round(sizes.none / sizes.q8), noneOverQ4: round(sizes.none / sizes.q4) },
    },
  };
}

export function formatMemory(r: MemoryResult): string {
  const kv = table(
    `(c) KV memory: ${r.model}, ${r.agents} agents sharing a ${r.systemTokens}-token system prompt (+${r.suffixTokens} own tokens each), ${r.bytesPerBlock} bytes per block`,
    'GPU KV blocks in use (usedBlocks x bytesPerBlock) with prefix sharing vs without (16 x one agent alone); "logical" is the pool\'s own count of references.',
    ['layout', 'used blocks', 'KV bytes', 'logical blocks', 'prefill tokens computed', 'vs shared'],
    [
      ['shared, 15 running + 1 idle', r.shared.peak.usedBlocks, kib(r.shared.bytesPeak), r.shared.peak.logicalBlocks, '', ''],
      ['shared, 16 idle caches', r.shared.idle.usedBlocks, kib(r.shared.bytesIdle), r.shared.idle.logicalBlocks, r.shared.prefillComputed, '1.00x'],
      ['unshared, 16 idle caches', r.unshared.blocks, kib(r.unshared.bytes), r.unshared.blocks, r.unshared.prefillComputed, ratio(r.unshared.blocks, r.shared.idle.usedBlocks)],
    ],
  );
  const b = r.blob;
  const blobs = table(
    `Blob at rest: one agent (${b.tokens} tokens, ${b.kvPayloadBytes} bytes of f32 K/V)`,
    'Size of the agent\'s safetensors blob (warm and cold tiers) by KV quantization (symmetric, one f32 scale per group); ratio vs unquantized.',
    ['quantization', 'bytes', 'size', 'none / this'],
    (['none', 'q8', 'q4'] as const).map((q) => [q, b[q], kib(b[q]), ratio(b.none, b[q])]),
  );
  return `${formatModelMemory(r.models)}\n${kv}\n${blobs}`;
}
