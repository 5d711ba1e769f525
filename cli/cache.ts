import { readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { AgentNotFoundError, InvalidRequestError } from '../src/domain/errors.ts';
import { DEFAULT_KV_AT_REST, type KvQuantization, type ModelCacheSpec } from '../src/domain/model-cache-spec.ts';
import { parseModelConfig, toModelCacheSpec } from '../src/domain/model-config.ts';
import { quantizedFingerprint, type BlockQuant } from '../src/domain/weight-blocks.ts';
import { FsCachePersistence } from '../src/adapters/node/fs-cache-persistence.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { readCheckpoint, readJsonFile } from '../src/adapters/safetensors/index.ts';
import { safetensorsBlobCodec } from '../src/adapters/safetensors/blob-codec.ts';
import { joinedBlob, loadStoredAgent } from '../src/application/cache/segments.ts';
import { parseFlags, required } from './args.ts';

/**
 * The model's cache spec (fingerprint included) without touching the GPU. `weights` names a
 * load-time quantization (--weights), which the fingerprint covers. The KV dtype does not
 * matter here: blobs of either dtype decode for either.
 */
export async function modelSpec(modelDir: string, blockTokens = 16, weights?: string): Promise<ModelCacheSpec> {
  const files = new FsModelSource(resolve(modelDir));
  const config = parseModelConfig(await readJsonFile(files, 'config.json'));
  const { fingerprint } = await readCheckpoint(files);
  return toModelCacheSpec(config, { modelId: basename(resolve(modelDir)), fingerprint: quantizedFingerprint(fingerprint, weightsArg(weights)), blockTokens, dtype: 'f32' });
}

/** `--weights q8|q4` (absent: the checkpoint's own dtype). */
export function weightsArg(raw: string | undefined): BlockQuant | undefined {
  if (raw === undefined || raw === 'q8' || raw === 'q4') return raw;
  throw new InvalidRequestError('--weights must be q8 or q4', { value: raw });
}

/** `--kv-quant none|q8|q4` (absent: DEFAULT_KV_AT_REST). */
export function quantizationArg(raw: string | undefined): KvQuantization {
  if (raw === undefined || raw === 'none' || raw === 'q8' || raw === 'q4') return raw ?? DEFAULT_KV_AT_REST;
  throw new InvalidRequestError('--kv-quant must be none, q8 or q4', { value: raw });
}

/** `semantic export`: the agent's blob, validated against the model, to a .safetensors file. */
export async function exportAgent(argv: readonly string[]): Promise<void> {
  const f = parseFlags(argv, ['--model', '--cache-dir', '--agent', '--out', '--weights']);
  const spec = await modelSpec(required(f, '--model'), 16, f.get('--weights'));
  const store = await FsCachePersistence.open({ dir: required(f, '--cache-dir'), modelFingerprint: spec.fingerprint });
  const agent = required(f, '--agent');
  // An agent checkpointed incrementally is stored as segments: export joins them into one blob.
  const stored = await loadStoredAgent(store, agent);
  if (!stored) throw new AgentNotFoundError(`no cached agent ${agent} in ${required(f, '--cache-dir')}`, { agentId: agent });
  const bytes = joinedBlob(safetensorsBlobCodec, spec, stored);
  const decoded = safetensorsBlobCodec.decode(bytes, spec);
  writeFileSync(required(f, '--out'), bytes);
  process.stdout.write(`${JSON.stringify({ agent, tokens: decoded.tokenIds.length, bytes: bytes.byteLength, quantization: decoded.quantization })}\n`);
}

/** `semantic import`: a .safetensors blob (e.g. exported from a browser) into the cache folder. */
export async function importAgent(argv: readonly string[]): Promise<void> {
  const f = parseFlags(argv, ['--model', '--cache-dir', '--in', '--agent', '--weights']);
  const spec = await modelSpec(required(f, '--model'), 16, f.get('--weights'));
  const bytes = new Uint8Array(readFileSync(required(f, '--in')));
  const decoded = safetensorsBlobCodec.decode(bytes, spec);
  const agent = f.get('--agent') ?? decoded.agentId;
  // A blob stores its agent id; importing under another id re-encodes it so the two agree.
  const blob = agent === decoded.agentId ? bytes : safetensorsBlobCodec.encode({ agentId: agent, spec, tokenIds: decoded.tokenIds, snapshot: decoded.snapshot, quantization: decoded.quantization });
  const store = await FsCachePersistence.open({ dir: required(f, '--cache-dir'), modelFingerprint: spec.fingerprint });
  await store.save(agent, blob, { agentId: agent, modelFingerprint: spec.fingerprint, tokenCount: decoded.tokenIds.length, lastUsed: Date.now() });
  process.stdout.write(`${JSON.stringify({ agent, tokens: decoded.tokenIds.length, bytes: blob.byteLength })}\n`);
}
