import { InvalidRequestError } from './errors.ts';

/**
 * How the next token is chosen. temperature 0 means greedy (argmax), whatever else is set.
 * topK 0 and topP 1 disable those filters. A seed makes sampling reproducible per request.
 */
export interface SamplingParams {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
}

export const GREEDY: SamplingParams = Object.freeze({ temperature: 0, topK: 0, topP: 1, seed: 0 });

export interface GenerationLimits {
  readonly maxTokens: number;
  readonly stop: readonly string[];
}

const MAX_STOP_STRINGS = 16;

function fail(field: string, value: unknown, rule: string): never {
  throw new InvalidRequestError(`${field} ${rule}`, { field, value });
}

/** Fill defaults and reject out-of-range values before anything reaches the GPU. */
export function validateSampling(input: Partial<SamplingParams> = {}): SamplingParams {
  const { temperature = 0, topK = 0, topP = 1, seed = 0 } = input;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0 || temperature > 100) {
    fail('temperature', temperature, 'must be a finite number in [0, 100]');
  }
  if (!Number.isInteger(topK) || topK < 0) fail('topK', topK, 'must be a non-negative integer');
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) fail('topP', topP, 'must be in (0, 1]');
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail('seed', seed, 'must be a uint32');
  return Object.freeze({ temperature, topK, topP, seed });
}

export function validateLimits(input: Partial<GenerationLimits>, maxContext: number): GenerationLimits {
  const { maxTokens = Math.min(256, maxContext), stop = [] } = input;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > maxContext) {
    fail('maxTokens', maxTokens, `must be an integer in [1, ${maxContext}]`);
  }
  if (!Array.isArray(stop) || stop.length > MAX_STOP_STRINGS) {
    fail('stop', stop, `must be an array of at most ${MAX_STOP_STRINGS} strings`);
  }
  for (const s of stop) {
    if (typeof s !== 'string' || s.length === 0) fail('stop', s, 'entries must be non-empty strings');
  }
  return Object.freeze({ maxTokens, stop: Object.freeze([...stop]) });
}

export function isGreedy(params: SamplingParams): boolean {
  return params.temperature === 0;
}

/** Index of the largest value; ties go to the lowest index (the GPU sampler does the same). */
export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
