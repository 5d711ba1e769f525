import { InvalidRequestError } from './errors.ts';

/**
 * Log-probabilities of sampled tokens, as OpenAI's `logprobs` / `top_logprobs` report them: the
 * natural log of the softmax of the logits the token was sampled from (after penalties and
 * logit bias, before temperature), for the chosen token and the k most likely ones.
 */
export interface TokenAlternative {
  readonly tokenId: number;
  /** The token's text on its own (a piece of a multi-byte character decodes to U+FFFD). */
  readonly token: string;
  readonly logprob: number;
}

export interface TokenLogprob extends TokenAlternative {
  /** The most likely tokens at this position, most likely first (empty when 0 were asked for). */
  readonly top: readonly TokenAlternative[];
}

/** OpenAI's limit on `top_logprobs`. */
export const MAX_TOP_LOGPROBS = 20;

export function validateTopLogprobs(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TOP_LOGPROBS) {
    throw new InvalidRequestError(`top logprobs must be an integer in [0, ${MAX_TOP_LOGPROBS}]`, { field: 'logprobs', value: String(value) });
  }
  return value;
}

/** log(sum(exp(x))) computed stably in f64. */
function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** The `k` largest entries' indices, largest first; ties go to the lower index. */
function topIndices(row: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length === k && row[i] <= row[best[k - 1]]) continue;
    let at = best.length < k ? best.length : k - 1;
    best[at] = i;
    while (at > 0 && row[best[at]] > row[best[at - 1]]) {
      [best[at], best[at - 1]] = [best[at - 1], best[at]];
      at--;
    }
  }
  return best;
}

/** The chosen token's log-probability and the `k` most likely tokens', from one row of logits. */
export function tokenLogprob(row: Float32Array, chosen: number, k: number, text: (id: number) => string): TokenLogprob {
  const norm = logSumExp(row);
  const alt = (id: number): TokenAlternative => ({ tokenId: id, token: text(id), logprob: row[id] - norm });
  return { ...alt(chosen), top: k > 0 ? topIndices(row, k).map(alt) : [] };
}
