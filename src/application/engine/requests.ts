import { InvalidRequestError } from '../../domain/errors.ts';
import { validateTopLogprobs } from '../../domain/logprobs.ts';
import { validateLimits, validateSampling, withDefaults, type GenerationLimits, type SamplingParams } from '../../domain/sampling.ts';
import { validateAgentId, validateTokenIds } from '../../domain/values.ts';
import type { SubmitRequest } from '../../ports/inbound.ts';
import type { TokenizerPort } from '../../ports/outbound.ts';
import type { SequenceOutput } from './sequence.ts';

export interface ValidRequest {
  readonly agentId: string;
  readonly promptIds: readonly number[];
  readonly sampling: SamplingParams;
  readonly limits: GenerationLimits;
  /** Alternatives to report per token; null: no logprobs. */
  readonly logprobs: number | null;
  readonly output: SequenceOutput;
}

/** Everything about a request is checked here, at submit time, never in the middle of a step. */
export function validateRequest(request: SubmitRequest, tokenizer: TokenizerPort | null, vocabSize: number, maxContext: number): ValidRequest {
  const agentId = validateAgentId(request.agentId);
  const given = [request.prompt, request.promptIds].filter((p) => p !== undefined).length;
  if (given !== 1) throw new InvalidRequestError('give exactly one of prompt or promptIds');
  let promptIds: readonly number[];
  if (request.promptIds !== undefined) {
    promptIds = validateTokenIds(request.promptIds, vocabSize);
  } else {
    if (!tokenizer) throw new InvalidRequestError('text prompts need a tokenizer; pass promptIds');
    const p = request.prompt;
    promptIds = typeof p === 'string' ? (tokenizer.encodePrompt?.(p) ?? tokenizer.encode(p)) : tokenizer.applyChatTemplate(p ?? []);
  }
  if (promptIds.length === 0) throw new InvalidRequestError('the prompt is empty');
  if (promptIds.length >= maxContext) {
    throw new InvalidRequestError(`the prompt has ${promptIds.length} tokens; the context holds ${maxContext}`, { promptTokens: promptIds.length, maxContext });
  }
  // generation_config.json's defaults (temperature, top_p, top_k, repetition_penalty) unless the
  // request sets the field itself.
  const sampling = validateSampling(withDefaults(tokenizer?.generationDefaults?.(), request.sampling));
  for (const [token] of sampling.logitBias ?? []) {
    if (token >= vocabSize) throw new InvalidRequestError(`logit bias names token ${token}; the vocabulary has ${vocabSize}`, { param: 'logit_bias', token, vocabSize });
  }
  const limits = validateLimits({ maxTokens: request.maxTokens, stop: request.stop }, maxContext - promptIds.length);
  const logprobs = request.logprobs === undefined ? null : validateTopLogprobs(request.logprobs);
  const output = { ignoreEos: request.ignoreEos === true, keepLogits: request.returnLogits === true, scratch: request.scratch === true };
  return { agentId, promptIds, sampling, limits, logprobs, output };
}
