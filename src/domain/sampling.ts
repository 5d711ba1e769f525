import { InvalidRequestError } from './errors.ts';

/**
 * How the next token is chosen. temperature 0 means greedy (argmax), whatever else is set.
 * topK 0 and topP 1 disable those filters. A seed makes sampling reproducible per request.
 *
 * The optional logit processors (absent = off) run before temperature, in HF's order:
 * - repetitionPenalty (HF `repetition_penalty`, > 0, 1 = off): the logit l of every token that
 *   occurs in the prompt or the output becomes l / r when l > 0, else l * r. Applies to greedy.
 * - presencePenalty / frequencyPenalty (OpenAI's, in [-2, 2]): l -= presence * [c > 0] +
 *   frequency * c, c = the token's count in the output so far (not the prompt).
 * - logitBias (OpenAI's, token -> bias in [-100, 100]): l += bias, after the penalties.
 * - minP (in [0, 1], 0 = off), after top-k and top-p: keep tokens with p >= minP * p_max, i.e.
 *   z >= z_max + ln(minP) on temperature-scaled logits z.
 */
export interface SamplingParams {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed: number;
  readonly repetitionPenalty?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  readonly minP?: number;
  /** OpenAI's logit_bias: [token id, bias in [-100, 100]] pairs added to the logits after the penalties. */
  readonly logitBias?: ReadonlyArray<readonly [number, number]>;
}

/** A sequence's tokens so far, for the penalties: its prompt and what it has generated. */
export interface TokenHistory {
  readonly promptIds: readonly number[];
  readonly generated: readonly number[];
}

/**
 * One token a penalty or a logit bias touches: how often it occurs in the prompt and in the
 * output (repetition applies only when it occurs), and its bias when it has one.
 */
export interface PenaltyEntry {
  readonly token: number;
  readonly promptCount: number;
  readonly outputCount: number;
  readonly bias?: number;
}

function hasCountPenalties(p: SamplingParams): boolean {
  return (p.repetitionPenalty ?? 1) !== 1 || (p.presencePenalty ?? 0) !== 0 || (p.frequencyPenalty ?? 0) !== 0;
}

export function hasPenalties(p: SamplingParams): boolean {
  return hasCountPenalties(p) || (p.logitBias?.length ?? 0) > 0;
}

/**
 * The distinct tokens of a history with their counts (when a count penalty is on), plus the
 * tokens with a logit bias, by token id; empty when no processor is on.
 */
export function penaltyEntries(p: SamplingParams, history: TokenHistory | undefined): PenaltyEntry[] {
  const counts = new Map<number, { promptCount: number; outputCount: number; bias?: number }>();
  const at = (t: number): { promptCount: number; outputCount: number; bias?: number } => {
    const c = counts.get(t) ?? { promptCount: 0, outputCount: 0 };
    counts.set(t, c);
    return c;
  };
  if (history && hasCountPenalties(p)) {
    for (const t of history.promptIds) at(t).promptCount++;
    for (const t of history.generated) at(t).outputCount++;
  }
  for (const [t, bias] of p.logitBias ?? []) at(t).bias = bias;
  return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([token, c]) => ({ token, ...c }));
}

const MAX_LOGIT_BIAS = 1024;

function validateLogitBias(value: unknown): ReadonlyArray<readonly [number, number]> {
  if (!Array.isArray(value) || value.length > MAX_LOGIT_BIAS) fail('logitBias', value, `must be an array of at most ${MAX_LOGIT_BIAS} [token, bias] pairs`);
  const seen = new Set<number>();
  return value.map((pair: unknown) => {
    const [token, bias] = Array.isArray(pair) ? (pair as unknown[]) : [];
    if (typeof token !== 'number' || !Number.isInteger(token) || token < 0 || seen.has(token)) fail('logitBias', pair, 'tokens must be distinct non-negative integers');
    if (!finite(bias) || bias < -100 || bias > 100) fail('logitBias', pair, 'biases must be numbers in [-100, 100]');
    seen.add(token);
    return Object.freeze([token, bias] as const);
  });
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

/**
 * A fresh uint32 seed. An unset seed means random sampling: a fixed default would make every
 * "random" reply the same text. Web Crypto exists in browsers, workers and Node 20.
 */
export function randomSeed(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * Fill defaults and reject out-of-range values before anything reaches the GPU. An unset seed
 * draws a random one; a given seed makes the request reproducible.
 */
export function validateSampling(input: Partial<SamplingParams> = {}): SamplingParams {
  const { temperature = 0, topK = 0, topP = 1 } = input;
  const seed = input.seed ?? randomSeed();
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0 || temperature > 100) {
    fail('temperature', temperature, 'must be a finite number in [0, 100]');
  }
  if (!Number.isInteger(topK) || topK < 0) fail('topK', topK, 'must be a non-negative integer');
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) fail('topP', topP, 'must be in (0, 1]');
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail('seed', seed, 'must be a uint32');
  return Object.freeze({ temperature, topK, topP, seed, ...validateProcessors(input) });
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The optional processors, each kept only when given (absent means off). */
function validateProcessors(input: Partial<SamplingParams>): Partial<SamplingParams> {
  const out: { -readonly [K in keyof SamplingParams]?: SamplingParams[K] } = {};
  const { repetitionPenalty: r, presencePenalty: pp, frequencyPenalty: fp, minP, logitBias } = input;
  if (logitBias !== undefined && logitBias.length > 0) out.logitBias = validateLogitBias(logitBias);
  if (r !== undefined) {
    if (!finite(r) || r <= 0 || r > 100) fail('repetitionPenalty', r, 'must be a finite number in (0, 100]');
    out.repetitionPenalty = r;
  }
  if (pp !== undefined) {
    if (!finite(pp) || pp < -2 || pp > 2) fail('presencePenalty', pp, 'must be a number in [-2, 2]');
    out.presencePenalty = pp;
  }
  if (fp !== undefined) {
    if (!finite(fp) || fp < -2 || fp > 2) fail('frequencyPenalty', fp, 'must be a number in [-2, 2]');
    out.frequencyPenalty = fp;
  }
  if (minP !== undefined) {
    if (!finite(minP) || minP < 0 || minP > 1) fail('minP', minP, 'must be a number in [0, 1]');
    out.minP = minP;
  }
  return out;
}

/**
 * A request's sampling fields over the model's defaults: a field the request gives (not
 * undefined) wins, field by field. The result still goes through validateSampling.
 */
export function withDefaults(defaults: Partial<SamplingParams> | undefined, request: Partial<SamplingParams> | undefined): Partial<SamplingParams> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(request ?? {})) if (value !== undefined) out[key] = value;
  return out as Partial<SamplingParams>;
}

/**
 * generation_config.json's sampling defaults as SamplingParams fields. HF samples only when
 * `do_sample` is true, so temperature, top_k and top_p count only then; repetition_penalty
 * applies to greedy decoding too. Fields that are absent or malformed are left out.
 */
export function generationDefaults(config: Readonly<Record<string, unknown>> | null | undefined): Partial<SamplingParams> {
  if (!config) return {};
  const out: { -readonly [K in keyof SamplingParams]?: SamplingParams[K] } = {};
  const num = (key: string): number | undefined => (finite(config[key]) ? (config[key] as number) : undefined);
  if (config['do_sample'] === true) {
    const t = num('temperature');
    const k = num('top_k');
    const p = num('top_p');
    if (t !== undefined) out.temperature = t;
    if (k !== undefined && Number.isInteger(k)) out.topK = k;
    if (p !== undefined) out.topP = p;
    const m = num('min_p');
    if (m !== undefined) out.minP = m;
  }
  const r = num('repetition_penalty');
  if (r !== undefined && r !== 1) out.repetitionPenalty = r;
  return out;
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
