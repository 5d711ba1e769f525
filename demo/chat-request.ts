import type { ChatCompletionChunk, InspectSnapshot, LocalEngine, OpenAiMessage } from '../src/client/index.ts';

/** Where a request's context came from, as the inspector tells it. */
export type ContextSource = 'hot' | 'warm' | 'cold' | 'shared prefix' | 'recomputed';

/** One request as the inspector lists it. TTFT is measured in the page: what a user waits. */
export interface RequestMetric {
  readonly seq: number;
  readonly agentId: string;
  readonly startedAt: number;
  firstTokenAt: number | null;
  endedAt: number | null;
  promptTokens: number;
  /** Prompt tokens not recomputed (`usage.prompt_tokens_details.cached_tokens`). */
  skippedTokens: number;
  completionTokens: number;
  source: ContextSource | null;
  /** Chunks rendered while streaming (more than one: the text streamed). */
  chunks: number;
  error: string | null;
}

export interface ChatRequest {
  readonly engine: LocalEngine;
  readonly agentId: string;
  readonly messages: readonly OpenAiMessage[];
  readonly maxTokens: number;
  readonly metric: RequestMetric;
  readonly signal?: AbortSignal;
  /** Each text delta as it arrives. */
  readonly onText: (text: string) => void;
}

/**
 * The trained model never learned an end-of-turn token: a speech ends at a blank line, so the
 * blank line is the stop string.
 */
const STOP = ['\n\n'];

/** Stream one agent turn through the OpenAI-shaped API; fills `metric` as it goes. Returns the reply text. */
export async function streamChat(r: ChatRequest): Promise<string> {
  const stream = await r.engine.chat.completions.create(
    {
      model: r.engine.model.id,
      agent_id: r.agentId,
      messages: r.messages,
      max_tokens: r.maxTokens,
      stop: STOP,
      // A little randomness: greedy decoding of a small model repeats itself, and two agents
      // with the same opening would say the same thing.
      temperature: 0.6,
      top_p: 0.9,
      stream: true,
      stream_options: { include_usage: true },
    },
    { signal: r.signal },
  );
  let text = '';
  for await (const chunk of stream as AsyncIterable<ChatCompletionChunk>) {
    const delta = chunk.choices[0]?.delta.content ?? '';
    if (delta) {
      r.metric.firstTokenAt ??= performance.now();
      r.metric.chunks++;
      text += delta;
      r.onText(delta);
    }
    if (chunk.usage) {
      r.metric.promptTokens = chunk.usage.prompt_tokens;
      r.metric.skippedTokens = chunk.usage.prompt_tokens_details.cached_tokens;
      r.metric.completionTokens = chunk.usage.completion_tokens;
    }
  }
  r.metric.endedAt = performance.now();
  return text;
}

/** The request's context source, from the runtime's record of the agent's latest restore. */
export function sourceOf(snapshot: InspectSnapshot, agentId: string, skipped: number): ContextSource {
  const tier = snapshot.agents.find((a) => a.agentId === agentId)?.lastRestore?.tier ?? 'none';
  if (tier !== 'none') return tier;
  return skipped > 0 ? 'shared prefix' : 'recomputed';
}

/** Decode throughput over time, from the arrival times of text chunks of every stream. */
export class RateMeter {
  private readonly arrivals: number[] = [];
  /** A new array at each sample, so that views given it see a change. */
  samples: ReadonlyArray<{ readonly t: number; readonly tps: number }> = [];

  tick(now = performance.now()): void {
    this.arrivals.push(now);
  }

  /** Close a window: tokens/s over the last `windowMs`; keeps the last `keep` samples. */
  sample(now = performance.now(), windowMs = 1000, keep = 90): void {
    while (this.arrivals.length > 0 && this.arrivals[0] < now - windowMs) this.arrivals.shift();
    this.samples = [...this.samples, { t: now, tps: (this.arrivals.length * 1000) / windowMs }].slice(-keep);
  }
}
