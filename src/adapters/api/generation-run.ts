import { ModelNotFoundError } from '../../domain/errors.ts';
import type { SamplingParams } from '../../domain/sampling.ts';
import type { AgentManagementPort, GenerationResult, InferencePort, ModelManagementPort, TokenDelta } from '../../ports/inbound.ts';
import type { ChatRequest } from './request-fields.ts';

/** The inbound ports the HTTP-shaped API runs on. */
export interface ApiPorts {
  readonly inference: InferencePort;
  readonly agents: AgentManagementPort;
  readonly models: ModelManagementPort;
}

/** Ids for responses (chatcmpl-..., msg_...): random, from the platform's CSPRNG. */
export function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
}

export { randomSeed } from '../../domain/sampling.ts';

/** The loaded model's id; the request's `model`, when given, must name it. */
export async function servedModel(models: ModelManagementPort, requested: string | undefined): Promise<string> {
  const current = await models.getCurrentModel();
  if (!current) throw new ModelNotFoundError('no model is loaded', { param: 'model' });
  if (requested !== undefined && requested !== current.id) {
    throw new ModelNotFoundError(`model ${requested} is not loaded; this server runs ${current.id}`, { param: 'model', model: requested });
  }
  return current.id;
}

function sampling(req: ChatRequest): Partial<SamplingParams> {
  const out: { -readonly [K in keyof SamplingParams]?: SamplingParams[K] } = { seed: req.seed };
  if (req.temperature !== undefined) out.temperature = req.temperature;
  if (req.topP !== undefined) out.topP = req.topP;
  if (req.topK !== undefined) out.topK = req.topK;
  if (req.presencePenalty !== undefined) out.presencePenalty = req.presencePenalty;
  if (req.frequencyPenalty !== undefined) out.frequencyPenalty = req.frequencyPenalty;
  if (req.logitBias && req.logitBias.length > 0) out.logitBias = req.logitBias;
  return out;
}

/**
 * A generation in progress. `started` settles when the first token arrives or the request
 * ends, whichever comes first, so a stream can still answer a request the engine refuses
 * (a prompt longer than the context) with a 4xx instead of a 200 that carries an error.
 */
export interface GenerationRun {
  /** Resolves at the first token or the end; carries the error when the request failed before any token. */
  readonly started: Promise<{ readonly failed: boolean; readonly error?: unknown }>;
  readonly done: Promise<GenerationResult>;
}

/**
 * Run a chat request through InferencePort. A request bound to no agent runs as a throwaway
 * agent, deleted when it ends: its blocks stay in the prefix index, so a later request with the
 * same prefix still reuses them.
 */
export function runGeneration(ports: ApiPorts, req: ChatRequest, signal: AbortSignal, onToken?: (d: TokenDelta) => void): GenerationRun {
  const agentId = req.agentId ?? `tmp-${randomId()}`;
  let settle: (s: { failed: boolean; error?: unknown }) => void = () => undefined;
  const started = new Promise<{ failed: boolean; error?: unknown }>((resolve) => (settle = resolve));
  const done = ports.inference
    .generate(agentId, req.messages, {
      maxTokens: req.maxTokens,
      sampling: sampling(req),
      stop: req.stop,
      ...(req.logprobs !== undefined ? { logprobs: req.logprobs } : {}),
      // Bound to no agent: a throwaway one, whose context is cached (prefix index) but never stored.
      scratch: !req.agentId,
      signal,
      onToken: (d) => {
        settle({ failed: false });
        onToken?.(d);
      },
    })
    .finally(() => {
      if (!req.agentId) void ports.agents.deleteAgent(agentId).catch(() => undefined);
    });
  // The first settle wins: a token before the end, else the outcome itself.
  done.then(() => settle({ failed: false }), (error: unknown) => settle({ failed: true, error }));
  return { started, done };
}
