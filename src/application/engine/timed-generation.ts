import type { CompletedGeneration } from '../../domain/values.ts';
import type { SubmitRequest, TokenDelta } from '../../ports/inbound.ts';
import type { BlockPoolBatchEngine } from '../block-pool-batch-engine.ts';

/** One finished request with what callers report about it: prompt reuse and latency. */
export interface TimedGeneration {
  readonly result: CompletedGeneration;
  readonly prefillComputed: number;
  readonly prefillReused: number;
  /** From submit (which includes any cache restore) to the first streamed token. */
  readonly ttftMs: number;
  readonly totalMs: number;
}

/** Submit one request, keep the engine running, and wait for it; an abort signal cancels it. */
export async function generateTimed(
  engine: BlockPoolBatchEngine,
  request: SubmitRequest,
  options: { readonly onToken?: (d: TokenDelta) => void; readonly signal?: AbortSignal } = {},
): Promise<TimedGeneration> {
  const started = performance.now();
  let firstToken = 0;
  const uid = await engine.submit(request);
  engine.onToken(uid, (d) => {
    firstToken ||= performance.now();
    options.onToken?.(d);
  });
  const abort = (): void => void engine.cancel(uid);
  options.signal?.addEventListener('abort', abort, { once: true });
  const pending = engine.result(uid);
  void engine.run();
  const result = await pending.finally(() => options.signal?.removeEventListener('abort', abort));
  const ended = performance.now();
  const accounting = engine.accounting(uid) ?? { prefillComputed: 0, prefillReused: 0 };
  return { result, ...accounting, ttftMs: (firstToken || ended) - started, totalMs: ended - started };
}
