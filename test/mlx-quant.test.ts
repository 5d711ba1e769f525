/**
 * MLX quantized checkpoints without a GPU: config.json's quantization, the strict validation of
 * each quantized linear (typed errors naming tensor and reason), the affine decode, the
 * assembler that regroups X.weight/X.scales/X.biases into the GPU block layout whatever the
 * file's tensor order and the loader's read sizes, the CPU reference's loading of the committed
 * fixtures (close to the HF weights they were made from), and their regeneration by
 * tools/make-mlx.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCpuModel, loadWeights } from '../src/adapters/cpu/index.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { parseSafetensors, serializeSafetensors, tensorToFloat32, type TensorHeader, type TensorInput } from '../src/adapters/safetensors/index.ts';
import { MlxWeightAssembler } from '../src/adapters/webgpu/mlx-weights.ts';
import type { LoadedTensor } from '../src/adapters/webgpu/weights.ts';
import { InvalidRequestError, ModelFormatError, ModelNotFoundError, UnsupportedModelError, UnsupportedTensorTypeError } from '../src/domain/errors.ts';
import { f16BitsToF32, f32ToF16Bits } from '../src/domain/half.ts';
import { mlxDequantize, mlxGpuBlocks, mlxQuantization, planMlxLinears, type MlxQuantization } from '../src/domain/mlx-quant.ts';
import type { ModelFileSource } from '../src/ports/outbound.ts';
import { buildMlx, MLX_FIXTURES } from '../tools/make-mlx.ts';
import { mlxQuantize } from '../tools/mlx-quantize.ts';

const MODELS = join(import.meta.dirname, '..', 'public', 'models');
const Q4: MlxQuantization = { groupSize: 32, bits: 4, overrides: new Map() };

/** A quantized linear's three headers as MLX writes them. */
function headers(prefix: string, rows: number, cols: number, bits: number, group: number, scale = 'F16'): Array<[string, TensorHeader]> {
  const h = (dtype: string, shape: number[]): TensorHeader => ({ dtype: dtype as TensorHeader['dtype'], shape, byteLength: 0 });
  return [
    [`${prefix}.weight`, h('U32', [rows, (cols * bits) / 32])],
    [`${prefix}.scales`, h(scale, [rows, cols / group])],
    [`${prefix}.biases`, h(scale, [rows, cols / group])],
  ];
}

function rejects(q: MlxQuantization, entries: Array<[string, TensorHeader]>): unknown {
  try {
    planMlxLinears(q, new Map(entries));
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('config.json quantization', () => {
  it('reads quantization (or its copy quantization_config) with per-module overrides', () => {
    const q = mlxQuantization({ quantization: { group_size: 64, bits: 4, 'model.layers.0.mlp.down_proj': { group_size: 64, bits: 8 }, 'lm_head': false } });
    expect(q).toMatchObject({ groupSize: 64, bits: 4 });
    expect(q?.overrides.get('model.layers.0.mlp.down_proj')).toEqual({ groupSize: 64, bits: 8 });
    expect(q?.overrides.get('lm_head')).toBe(false);
    expect(mlxQuantization({ quantization_config: { group_size: 32, bits: 8 } })).toMatchObject({ groupSize: 32, bits: 8 });
    expect(mlxQuantization({ model_type: 'llama' })).toBeUndefined();
  });

  it('refuses another scheme by name, and malformed parameters', () => {
    expect(() => mlxQuantization({ quantization_config: { quant_method: 'gptq', bits: 4, group_size: 128 } })).toThrow(UnsupportedModelError);
    expect(() => mlxQuantization({ quantization: { group_size: 32, bits: 4, mode: 'mxfp4' } })).toThrow(UnsupportedModelError);
    expect(mlxQuantization({ quantization: { group_size: 32, bits: 4, mode: 'affine' } })).toMatchObject({ groupSize: 32, bits: 4 });
    expect(() => mlxQuantization({ quantization: { group_size: 64 } })).toThrow(ModelFormatError);
    expect(() => mlxQuantization({ quantization: { group_size: 0, bits: 4 } })).toThrow(ModelFormatError);
  });
});

describe('validation of quantized linears', () => {
  const p = 'model.layers.0.mlp.up_proj';
  it('accepts consistent shapes and states the logical matrix', () => {
    const plan = planMlxLinears(Q4, new Map(headers(p, 8, 96, 4, 32)));
    expect(plan.get(`${p}.weight`)).toMatchObject({ rows: 8, cols: 96, bits: 4, groupSize: 32, scaleDtype: 'F16' });
  });

  it.each([
    ['missing-scales', headers(p, 8, 96, 4, 32).filter(([n]) => !n.endsWith('scales'))],
    ['missing-biases', headers(p, 8, 96, 4, 32).filter(([n]) => !n.endsWith('biases'))],
    ['missing-weight', headers(p, 8, 96, 4, 32).filter(([n]) => !n.endsWith('weight'))],
    // An 8-bit file under a 4-bit config: the packed width says in = 192, the scales say 96.
    ['shape-mismatch', headers(p, 8, 96, 8, 32)],
    // in = 80 is not a multiple of group_size 32.
    ['shape-mismatch', headers(p, 8, 80, 4, 32).map(([n, h]): [string, TensorHeader] => (n.endsWith('weight') ? [n, h] : [n, { ...h, shape: [8, 2] }]))],
    ['bad-biases', headers(p, 8, 96, 4, 32).map(([n, h]): [string, TensorHeader] => (n.endsWith('biases') ? [n, { ...h, dtype: 'BF16' }] : [n, h]))],
  ])('%s is a ModelFormatError naming the tensor', (reason, entries) => {
    const error = rejects(Q4, entries);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as ModelFormatError).details).toMatchObject({ reason });
    expect((error as Error).message).toContain(p);
  });

  it('3 bits, F32 scales and group 16 are UnsupportedTensorTypeErrors naming the tensor', () => {
    for (const [q, entries] of [
      [{ ...Q4, bits: 3 }, headers(p, 8, 96, 4, 32)],
      [Q4, headers(p, 8, 96, 4, 32, 'F32')],
      [{ ...Q4, groupSize: 16 }, headers(p, 8, 96, 4, 16)],
    ] as const) {
      const error = rejects(q, [...entries]);
      expect(error).toBeInstanceOf(UnsupportedTensorTypeError);
      expect((error as UnsupportedTensorTypeError).details).toMatchObject({ tensor: expect.stringContaining(p) });
    }
  });
});

describe('affine decode', () => {
  it('reads element j of a word at bits j*bits, value = scale * q + bias', () => {
    const l = { name: 'w', scales: 's', biases: 'b', rows: 1, cols: 32, bits: 4, groupSize: 32, scaleDtype: 'F16' } as const;
    const words = new Uint32Array([0x76543210, 0xfedcba98, 0x01234567, 0x89abcdef]);
    const scale = new Uint16Array([f32ToF16Bits(0.5)]);
    const bias = new Uint16Array([f32ToF16Bits(-2)]);
    const got = mlxDequantize(l, new Uint8Array(words.buffer), new Uint8Array(scale.buffer), new Uint8Array(bias.buffer));
    const q = [...Array.from({ length: 16 }, (_, j) => j), ...Array.from({ length: 8 }, (_, j) => 7 - j), ...Array.from({ length: 8 }, (_, j) => 15 - j)];
    expect([...got]).toEqual(q.map((v) => 0.5 * v - 2));
  });

  it('8 bits: quantize then decode is within half a step of the input', () => {
    const x = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i * 1.7) * 0.1);
    const q = mlxQuantize(x, 64, 8, 64, 'F16');
    const l = { name: 'w', scales: 's', biases: 'b', rows: 3, cols: 64, bits: 8, groupSize: 64, scaleDtype: 'F16' } as const;
    const y = mlxDequantize(l, new Uint8Array(q.weight.buffer), new Uint8Array(q.scales.buffer), new Uint8Array(q.biases.buffer));
    for (let i = 0; i < x.length; i++) expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(f16BitsToF32(q.scales[Math.floor(i / 64)]) * 0.5 + 1e-4);
  });
});

describe('MlxWeightAssembler', () => {
  const rows = 12;
  const cols = 64;
  const x = Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i * 0.37));
  const q = mlxQuantize(x, cols, 4, 32, 'F16');
  const bytes = (a: Uint32Array | Uint16Array): Uint8Array => new Uint8Array(a.buffer);
  const plan = planMlxLinears(Q4, new Map(headers('m', rows, cols, 4, 32)));
  const linear = plan.get('m.weight');
  const whole = linear && mlxGpuBlocks(linear, rows, bytes(q.weight), bytes(q.scales), bytes(q.biases));
  const data: Record<string, Uint8Array> = { 'm.weight': bytes(q.weight), 'm.scales': bytes(q.scales), 'm.biases': bytes(q.biases), 'norm.weight': new Uint8Array(8) };

  it.each([
    ['weight first, 5-row reads', ['m.weight', 'norm.weight', 'm.scales', 'm.biases'], 5],
    ['scales first, 1-row reads', ['m.biases', 'm.scales', 'norm.weight', 'm.weight'], 1],
  ])('%s: the loader sees one [out, in] matrix with the whole-tensor blocks', async (_label, order, rowsPerRead) => {
    const seen = new Map<string, { t: LoadedTensor; bytes: Uint8Array }>();
    let shown: ReadonlyMap<string, TensorHeader> = new Map();
    const inner = {
      begin: (h: ReadonlyMap<string, TensorHeader>): void => void (shown = h),
      tensor: async (t: LoadedTensor): Promise<void> => {
        const step = t.shape.length === 2 ? (t.byteLength / t.shape[0]) * rowsPerRead : t.byteLength;
        const parts: Uint8Array[] = [];
        for (let at = 0; at < t.byteLength; at += step) parts.push((await t.read(Math.min(step, t.byteLength - at))).slice());
        seen.set(t.name, { t, bytes: new Uint8Array(Buffer.concat(parts)) });
      },
    };
    const asm = new MlxWeightAssembler(inner, Q4);
    const hs = new Map<string, TensorHeader>([...headers('m', rows, cols, 4, 32).map(([n, h]): [string, TensorHeader] => [n, { ...h, byteLength: data[n].byteLength }]), ['norm.weight', { dtype: 'F32', shape: [2], byteLength: 8 }]]);
    asm.begin(hs);
    expect([...shown.keys()].sort()).toEqual(['m.weight', 'norm.weight']);
    expect(shown.get('m.weight')).toEqual({ dtype: 'U8', shape: [rows, cols], byteLength: whole?.byteLength });
    for (const name of order) {
      let at = 0;
      const d = data[name];
      await asm.tensor({ name, ...(hs.get(name) as TensorHeader), read: async (n) => d.subarray(at, (at += n)) });
    }
    expect(seen.get('m.weight')?.t.blockDtype).toBe('mlx4_g32_f16');
    expect(Buffer.compare(Buffer.from(seen.get('m.weight')?.bytes ?? []), Buffer.from(whole ?? []))).toBe(0);
    expect(seen.get('norm.weight')?.bytes.byteLength).toBe(8);
  });
});

class MemorySource implements ModelFileSource {
  readonly id = 'memory';
  constructor(private readonly files: ReadonlyMap<string, Uint8Array>) {}
  async read(name: string): Promise<Uint8Array> {
    const f = this.files.get(name);
    if (f === undefined) throw new ModelNotFoundError(`${name} not in memory`);
    return f;
  }
  async has(name: string): Promise<boolean> {
    return this.files.has(name);
  }
}

describe('the committed MLX fixtures', () => {
  it.each(MLX_FIXTURES.map((f) => [f.dir, f] as const))('%s: the CPU loader decodes every matrix close to the HF weights it was made from', async (dir, f) => {
    const loaded = await loadWeights(new FsModelSource(join(MODELS, 'mlx', dir)));
    const hf = parseSafetensors(new Uint8Array(readFileSync(join(MODELS, f.source, 'model.safetensors'))));
    expect([...loaded.keys()].sort()).toEqual([...hf.tensors.keys()].sort());
    for (const [name, t] of hf.tensors) {
      const want = tensorToFloat32(t);
      const got = loaded.get(name);
      expect(got?.shape, name).toEqual(t.shape);
      const bits = t.shape.length === 2 ? (f.overrides?.[name.replace(/\.weight$/, '')]?.bits ?? f.bits) : 0;
      expect(got?.dtype, name).toBe(bits ? `MLX${bits}` : t.dtype);
      let range = 0;
      for (const v of want) range = Math.max(range, Math.abs(v));
      // Half a quantization step of a group spanning at most 2 * range, plus the scale rounding.
      const tol = bits ? (2 * range) / (2 ** bits - 1) * 0.5 * 1.01 + 1e-3 : 0;
      let err = 0;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs((got?.data[i] ?? NaN) - want[i]));
      expect(err, name).toBeLessThanOrEqual(tol);
    }
  });

  it('a malformed MLX checkpoint is refused by the CPU loader with the typed error', async () => {
    const f = buildMlx(MLX_FIXTURES[0]);
    const st = parseSafetensors(f.get('model.safetensors') ?? new Uint8Array());
    const kept = new Map<string, TensorInput>([...st.tensors].filter(([n]) => n !== 'model.layers.1.mlp.up_proj.biases').map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape, data: t.data }]));
    const files = new Map([...f, ['model.safetensors', serializeSafetensors(kept)]]);
    await expect(loadWeights(new MemorySource(files))).rejects.toMatchObject({ name: 'ModelFormatError', details: { reason: 'missing-biases' } });
  });

  it('quantizing again at load (weights: q8) is refused on an MLX checkpoint', async () => {
    await expect(loadCpuModel(new FsModelSource(join(MODELS, 'mlx', 'tiny-qwen2-4bit')), { weights: 'q8' })).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it('tools/make-mlx.ts reproduces every committed file byte for byte', () => {
    for (const f of MLX_FIXTURES) {
      for (const [name, bytes] of buildMlx(f)) {
        const committed = readFileSync(join(MODELS, 'mlx', f.dir, name));
        expect(Buffer.compare(Buffer.from(bytes), committed), `${f.dir}/${name}`).toBe(0);
      }
    }
  });
});
