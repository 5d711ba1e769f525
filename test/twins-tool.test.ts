import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseModelConfig } from '../src/domain/model-config.ts';
import { assertTensorShapes, modelTensorSpecs, tensorElements } from '../src/domain/model-tensors.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { readCheckpoint, tensorToFloat32 } from '../src/adapters/safetensors/index.ts';
import { SMOLLM2_135M, TWINS } from '../tools/twin-specs.ts';
import { twinConfig, writeTwin } from '../tools/twins.ts';

/** tools/twins.ts: the configs keep every real field but the layer count; the weights file is valid. */
const dir = mkdtempSync(join(tmpdir(), 'semantic-twin-tool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('twin configs', () => {
  it.each(TWINS.map((t) => [t.id, t] as const))('%s: only num_hidden_layers (and max_window_layers) change', (_id, spec) => {
    const cut = twinConfig(spec, 2);
    const full = parseModelConfig(spec.config);
    const twin = parseModelConfig(cut);
    expect(twin).toEqual({ ...full, nLayers: 2 });
    for (const key of Object.keys(spec.config)) if (key !== 'num_hidden_layers' && key !== 'max_window_layers') expect(cut[key]).toEqual(spec.config[key]);
    expect(cut['torch_dtype']).toBe('bfloat16');
  });
});

describe('writeTwin', () => {
  it('writes a bf16 checkpoint with every tensor the config needs, at the init scales', async () => {
    const twin = writeTwin(SMOLLM2_135M, dir, 1);
    const config = parseModelConfig(JSON.parse(readFileSync(join(twin.dir, 'config.json'), 'utf8')));
    const { tensors } = await readCheckpoint(new FsModelSource(twin.dir));
    assertTensorShapes(config, tensors);
    const specs = modelTensorSpecs(config);
    expect([...tensors.keys()].sort()).toEqual(specs.map((s) => s.name).sort());
    for (const t of tensors.values()) expect(t.dtype).toBe('BF16');
    expect(twin.tensorBytes).toBe(specs.reduce((n, s) => n + 2 * tensorElements(s.shape), 0));
    expect(statSync(join(twin.dir, 'model.safetensors')).size).toBe(twin.fileBytes);
    const std = (name: string): number => {
      const v = tensorToFloat32(tensors.get(name) ?? (undefined as never));
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    };
    expect(std('model.embed_tokens.weight')).toBeCloseTo(0.1, 2); // tied embedding
    expect(std('model.layers.0.mlp.down_proj.weight')).toBeCloseTo(1 / Math.sqrt(1536), 3);
    // Deterministic: the same spec gives the same bytes.
    const again = writeTwin(SMOLLM2_135M, join(dir, 'again'), 1);
    expect(readFileSync(join(again.dir, 'model.safetensors')).equals(readFileSync(join(twin.dir, 'model.safetensors')))).toBe(true);
  });
});
