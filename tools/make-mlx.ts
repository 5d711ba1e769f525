/**
 * Writes MLX quantized fixtures (the mlx-community layout) under public/models/mlx (or `--out DIR`):
 *   npx tsx tools/make-mlx.ts [--out DIR]
 *   tiny-qwen2-4bit  tiny-qwen2 (F16, untied lm_head, q/k/v bias), 4 bits, group_size 32
 *   tiny-qwen2-8bit  the same, 8 bits, group_size 32
 *   tiny-qwen3-4bit  tiny-qwen3 (BF16 scales, tied embedding, q/k norm), 4 bits, group_size 64,
 *                    with mlx-lm's per-module override giving layer 0's down_proj 8 bits
 * Group sizes: MLX offers 32, 64 and 128 and every quantized row length must be a multiple.
 * tiny-qwen2's rows are 96 or 192 long (hidden 96), so only 32 fits; tiny-qwen3's are 64 or 128,
 * so it takes MLX's default 64. Every matrix is quantized (embedding and lm_head included, as
 * mlx-lm does); norms and biases keep the model's dtype. Each folder has config.json (with
 * `quantization` and its copy `quantization_config`), model.safetensors and the source's
 * tokenizer.json, tokenizer_config.json and generation_config.json.
 * Deterministic: the inputs are the committed fixtures.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, tensorToFloat32, type TensorInput } from '../src/adapters/safetensors/index.ts';
import { mlxQuantize } from './mlx-quantize.ts';

const MODELS = join(import.meta.dirname, '..', 'public', 'models');
const COPIED = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'] as const;

export interface MlxFixture {
  readonly dir: string;
  readonly source: string;
  readonly bits: number;
  readonly groupSize: number;
  /** mlx-lm's per-module overrides (`model.layers.0.mlp.down_proj: { group_size, bits }`). */
  readonly overrides?: Readonly<Record<string, { readonly group_size: number; readonly bits: number }>>;
}

export const MLX_FIXTURES: readonly MlxFixture[] = [
  { dir: 'tiny-qwen2-4bit', source: 'tiny-qwen2', bits: 4, groupSize: 32 },
  { dir: 'tiny-qwen2-8bit', source: 'tiny-qwen2', bits: 8, groupSize: 32 },
  { dir: 'tiny-qwen3-4bit', source: 'tiny-qwen3', bits: 4, groupSize: 64, overrides: { 'model.layers.0.mlp.down_proj': { group_size: 64, bits: 8 } } },
];

const jsonBytes = (v: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

/** The fixture's files, name -> bytes. */
export function buildMlx(f: MlxFixture): Map<string, Uint8Array> {
  return quantizeFolder(join(MODELS, f.source), f);
}

/**
 * Any HF model folder (a fixture, a random-weight twin) quantized the mlx-community way: every
 * matrix to `bits` in groups of `groupSize` (or its override), tokenizer files copied when present.
 */
export function quantizeFolder(src: string, f: Pick<MlxFixture, 'bits' | 'groupSize' | 'overrides'>): Map<string, Uint8Array> {
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  const quantization = { group_size: f.groupSize, bits: f.bits, ...f.overrides };
  const st = parseSafetensors(new Uint8Array(readFileSync(join(src, 'model.safetensors'))));
  const out: Record<string, TensorInput> = {};
  for (const [name, t] of st.tensors) {
    if (t.shape.length !== 2) {
      out[name] = { dtype: t.dtype, shape: t.shape, data: t.data };
      continue;
    }
    const prefix = name.replace(/\.weight$/, '');
    const o = f.overrides?.[prefix];
    const [bits, group] = o ? [o.bits, o.group_size] : [f.bits, f.groupSize];
    const scaleDtype = t.dtype === 'BF16' ? 'BF16' : 'F16';
    const q = mlxQuantize(tensorToFloat32(t), t.shape[1], bits, group, scaleDtype);
    out[name] = { dtype: 'U32', shape: [t.shape[0], (t.shape[1] * bits) / 32], data: q.weight };
    out[`${prefix}.scales`] = { dtype: scaleDtype, shape: [t.shape[0], t.shape[1] / group], data: q.scales };
    out[`${prefix}.biases`] = { dtype: scaleDtype, shape: [t.shape[0], t.shape[1] / group], data: q.biases };
  }
  const files = new Map<string, Uint8Array>([
    ['config.json', jsonBytes({ ...config, quantization, quantization_config: quantization })],
    ['model.safetensors', serializeSafetensors(out, { format: 'mlx' })],
  ]);
  for (const name of COPIED) if (existsSync(join(src, name))) files.set(name, new Uint8Array(readFileSync(join(src, name))));
  return files;
}

if (process.argv[1]?.endsWith('make-mlx.ts')) {
  const at = process.argv.indexOf('--out');
  const root = at > 0 ? process.argv[at + 1] : join(MODELS, 'mlx');
  for (const f of MLX_FIXTURES) {
    const dir = join(root, f.dir);
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of buildMlx(f)) writeFileSync(join(dir, name), bytes);
    console.log(`${f.dir}: ${buildMlx(f).get('model.safetensors')?.length} bytes of weights`);
  }
}
