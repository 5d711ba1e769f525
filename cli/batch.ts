import { readFileSync } from 'node:fs';
import { errorToPlain, InvalidRequestError, type PlainError } from '../src/domain/errors.ts';
import type { CompletedGeneration } from '../src/domain/values.ts';
import type { BlockPoolBatchEngine } from '../src/application/block-pool-batch-engine.ts';
import type { SubmitRequest } from '../src/ports/inbound.ts';

/** One request of a `--batch` file, in the file's snake_case. */
interface BatchFileRequest {
  readonly prompt?: string;
  readonly prompt_ids?: number[];
  readonly max_tokens?: number;
  readonly temperature?: number;
  readonly top_k?: number;
  readonly top_p?: number;
  readonly seed?: number;
  readonly agent_id?: string;
  readonly stop?: string[];
  readonly join_at_step?: number;
}

export interface BatchRow {
  readonly tokens: readonly number[];
  readonly text: string;
  readonly finish_reason: string;
  readonly prefill_tokens_computed: number;
  readonly prefill_tokens_reused: number;
  readonly error?: { readonly name: string; readonly code: string; readonly message: string };
}

export function readBatchFile(path: string): Array<{ request: SubmitRequest; joinAt: number }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new InvalidRequestError(`--batch ${path} is not a readable JSON file`, { path, reason: String(cause) });
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { requests?: unknown })?.requests;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidRequestError('--batch file must hold a non-empty list of requests');
  return list.map((raw: BatchFileRequest, i) => {
    const joinAt = raw.join_at_step ?? 0;
    if (!Number.isInteger(joinAt) || joinAt < 0) throw new InvalidRequestError(`request ${i}: join_at_step must be a non-negative integer`);
    const request: SubmitRequest = {
      agentId: raw.agent_id ?? `batch-${i}`,
      ...(raw.prompt_ids !== undefined ? { promptIds: raw.prompt_ids } : { prompt: raw.prompt }),
      maxTokens: raw.max_tokens,
      sampling: { temperature: raw.temperature, topK: raw.top_k, topP: raw.top_p, seed: raw.seed },
      stop: raw.stop,
    };
    return { request, joinAt };
  });
}

/** Submit each request at its step; step the engine until every request has finished. */
export async function runBatch(engine: BlockPoolBatchEngine, items: ReadonlyArray<{ request: SubmitRequest; joinAt: number }>): Promise<BatchRow[]> {
  const uids: Array<string | PlainError> = new Array(items.length);
  const done = new Map<string, CompletedGeneration>();
  const lastJoin = Math.max(...items.map((i) => i.joinAt));
  let accepted = 0;
  for (let step = 0; step <= lastJoin || done.size < accepted; step++) {
    for (const [i, item] of items.entries()) {
      if (item.joinAt !== step) continue;
      // A bad request fails alone, with its typed error, and the rest of the batch runs.
      uids[i] = await engine.submit(item.request).catch((e: unknown) => errorToPlain(e));
      if (typeof uids[i] === 'string') accepted++;
    }
    for (const g of await engine.step()) done.set(g.uid, g);
  }
  return uids.map((uid) => {
    if (typeof uid !== 'string') {
      return { tokens: [], text: '', finish_reason: 'error', prefill_tokens_computed: 0, prefill_tokens_reused: 0, error: { name: uid.name, code: uid.code, message: uid.message } };
    }
    const g = done.get(uid) as CompletedGeneration;
    const acc = engine.accounting(uid) ?? { prefillComputed: 0, prefillReused: 0 };
    return {
      tokens: g.tokenIds,
      text: g.text,
      finish_reason: g.finishReason,
      prefill_tokens_computed: acc.prefillComputed,
      prefill_tokens_reused: acc.prefillReused,
      ...(g.error ? { error: { name: g.error.name, code: g.error.code, message: g.error.message } } : {}),
    };
  });
}
