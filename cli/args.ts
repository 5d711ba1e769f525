import { InvalidRequestError } from '../src/domain/errors.ts';

/** Parsed `semantic generate` options. */
export interface GenerateArgs {
  readonly model: string;
  readonly prompt?: string;
  readonly promptIds?: number[];
  readonly chat?: string;
  readonly batch?: string;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly seed?: number;
  readonly json: boolean;
  readonly dumpLogits?: string;
  readonly blockTokens: number;
  readonly cacheDir?: string;
  readonly agent?: string;
  readonly quantization?: string;
  /** Load-time weight quantization (q8 | q4); absent: the checkpoint's dtype. */
  readonly weights?: string;
  /** Hot KV pool storage (f16 | f32). */
  readonly kvDtype?: string;
  /** Hot KV pool budget in bytes, or as a fraction of the device memory left after the weights. */
  readonly kvBudgetBytes?: number;
  readonly kvBudgetFraction?: number;
}

const FLAGS = new Set(['--json']);
const VALUED = new Set([
  '--model', '--prompt', '--prompt-ids', '--chat', '--batch', '--max-tokens', '--temperature', '--top-k', '--top-p', '--seed', '--dump-logits', '--block-tokens', '--cache-dir', '--agent', '--kv-quant',
  '--weights', '--kv-dtype', '--kv-budget',
]);

function num(raw: string | undefined, flag: string, fallback: number, integer = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new InvalidRequestError(`${flag} expects a number, got ${raw}`, { flag });
  return n;
}

/** A KV budget: a fraction of what is left ("0.25", "25%"), else bytes ("268435456", "256M"). */
function kvBudget(raw: string | undefined, flag: string): { kvBudgetBytes?: number; kvBudgetFraction?: number } {
  if (raw === undefined) return {};
  const text = raw.trim();
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  const fraction = percent ? Number(percent[1]) / 100 : /^0?\.\d+$/.test(text) ? Number(text) : undefined;
  if (fraction === undefined) return { kvBudgetBytes: byteSize(raw, flag) };
  if (!(fraction > 0 && fraction <= 1)) throw new InvalidRequestError(`${flag} as a fraction must be in (0, 1] (e.g. 0.25 or 25%), got ${raw}`, { flag });
  return { kvBudgetFraction: fraction };
}

/** Bytes, with an optional K/M/G (binary) suffix: "67108864", "64M", "1.5G". */
function byteSize(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?B)?$/.exec(raw.trim());
  const scale: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  const bytes = m ? Math.floor(Number(m[1]) * scale[m[2].toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidRequestError(`${flag} expects a size in bytes (e.g. 268435456 or 256M), got ${raw}`, { flag });
  return bytes;
}

function oneOf(raw: string | undefined, flag: string, allowed: readonly string[]): string | undefined {
  if (raw === undefined || allowed.includes(raw)) return raw;
  throw new InvalidRequestError(`${flag} must be one of ${allowed.join(', ')}, got ${raw}`, { flag });
}

function parseIds(raw: string): number[] {
  const ids = raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InvalidRequestError('--prompt-ids expects comma-separated non-negative integers', { raw });
  }
  return ids;
}

export function parseGenerateArgs(argv: readonly string[]): GenerateArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (FLAGS.has(a)) flags.add(a);
    else if (VALUED.has(a)) {
      if (i + 1 >= argv.length) throw new InvalidRequestError(`${a} needs a value`, { flag: a });
      values.set(a, argv[++i]);
    } else throw new InvalidRequestError(`unknown argument ${a}`, { argument: a });
  }
  const model = values.get('--model');
  if (!model) throw new InvalidRequestError('--model <dir|file.gguf> is required');
  const inputs = ['--prompt', '--prompt-ids', '--chat', '--batch'].filter((f) => values.has(f));
  if (inputs.length !== 1) throw new InvalidRequestError('give exactly one of --prompt, --prompt-ids, --chat or --batch');
  return {
    model,
    prompt: values.get('--prompt'),
    promptIds: values.has('--prompt-ids') ? parseIds(values.get('--prompt-ids') ?? '') : undefined,
    chat: values.get('--chat'),
    batch: values.get('--batch'),
    maxTokens: num(values.get('--max-tokens'), '--max-tokens', 32, true),
    temperature: num(values.get('--temperature'), '--temperature', 0),
    topK: num(values.get('--top-k'), '--top-k', 0, true),
    topP: num(values.get('--top-p'), '--top-p', 1),
    // Unset: a random seed per request (validateSampling); given: reproducible.
    seed: values.has('--seed') ? num(values.get('--seed'), '--seed', 0, true) : undefined,
    json: flags.has('--json'),
    dumpLogits: values.get('--dump-logits'),
    blockTokens: num(values.get('--block-tokens'), '--block-tokens', 16, true),
    cacheDir: values.get('--cache-dir'),
    agent: values.get('--agent'),
    quantization: values.get('--kv-quant'),
    weights: oneOf(values.get('--weights'), '--weights', ['q8', 'q4']),
    kvDtype: oneOf(values.get('--kv-dtype'), '--kv-dtype', ['f16', 'f32']),
    ...kvBudget(values.get('--kv-budget'), '--kv-budget'),
  };
}

export const USAGE = `usage: semantic generate --model <dir|file.gguf> (--prompt <text> | --prompt-ids 1,2,3 | --chat <text> | --batch <requests.json>)
         [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
         [--block-tokens B] [--json] [--dump-logits <file.safetensors>]
         [--weights q8|q4] [--kv-dtype f16|f32] [--kv-budget <bytes (256M) or a fraction of free memory (0.25, 25%)>]
         [--cache-dir <dir> --agent <id> [--kv-quant none|q8|q4]]
       semantic export --model <dir> --cache-dir <dir> --agent <id> --out <file.safetensors> [--weights q8|q4]
       semantic import --model <dir> --cache-dir <dir> --in <file.safetensors> [--agent <id>] [--weights q8|q4]`;

/** `--flag value` pairs of the export/import commands. */
export function parseFlags(argv: readonly string[], allowed: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (!allowed.includes(flag)) throw new InvalidRequestError(`unknown argument ${flag}`, { argument: flag });
    if (i + 1 >= argv.length) throw new InvalidRequestError(`${flag} needs a value`, { flag });
    values.set(flag, argv[i + 1]);
  }
  return values;
}

export function required(values: Map<string, string>, flag: string): string {
  const v = values.get(flag);
  if (!v) throw new InvalidRequestError(`${flag} is required`, { flag });
  return v;
}
