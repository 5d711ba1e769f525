/**
 * Random-weight twins of real models (tools/twin-specs.ts): the real config with
 * `num_hidden_layers` cut (2 by default), bf16 weights with the fixtures' means and stds
 * (tools/fixture-weights.ts: tied embeddings std 0.1, linears std 1/√fan_in, norms 1 ± 0.1,
 * biases std 0.1), which keeps the layers' output dominant over the tied
 * embedding so greedy decoding varies, and the logits of a real vocabulary spread by several
 * units, so the top two are far apart compared with f32 rounding.
 *
 * A twin is hundreds of MB (Llama-3.2-1B cut to 2 layers: ~770 MB), so the safetensors file is
 * written tensor by tensor in chunks: the host never holds more than one chunk of values.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { shapeOf, tensorPlan, WEIGHT_SEED, type Init } from './fixture-weights.ts';
import { fnv1a32 } from './prng.ts';
import type { TwinSpec } from './twin-specs.ts';
import type { Json } from './tokenizer-json.ts';

export const TWIN_LAYERS = 2;
const BF16_BYTES = 2;
/** Values generated and written per chunk: 4 MB of bf16. */
const CHUNK = 1 << 21;

/** The spec's config.json with the layer count cut (max_window_layers follows, as HF requires). */
export function twinConfig(spec: TwinSpec, layers: number = TWIN_LAYERS): Record<string, Json> {
  const config: Record<string, Json> = { ...spec.config, num_hidden_layers: layers };
  const window = spec.config['max_window_layers'];
  if (typeof window === 'number') config['max_window_layers'] = Math.min(window, layers);
  return config;
}

/**
 * Values with the init's mean and std, in chunks, written straight as bf16 bits. They are
 * uniform on [mean - √3·std, mean + √3·std] (the same std as the fixtures' normals), not normal:
 * drawing ~400M normals with Box-Muller took 40 s here, this takes a few, and a sum over
 * hundreds of inputs (every matmul) is Gaussian either way. mulberry32 is inlined for speed.
 */
class UniformBf16Stream {
  private state: number;
  private readonly f32 = new Float32Array(1);
  private readonly u32 = new Uint32Array(this.f32.buffer);
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  fill(out: Uint16Array, init: Init): void {
    const half = Math.sqrt(3) * init.std;
    const { f32, u32 } = this;
    let state = this.state;
    for (let i = 0; i < out.length; i++) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      f32[0] = init.mean + half * (2 * u - 1);
      const bits = u32[0];
      // Round to nearest even on the 16 bits dropped (values are finite, so no NaN case).
      out[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
    }
    this.state = state;
  }
}

interface PlannedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
  readonly elements: number;
  readonly begin: number;
}

/** Tensors in the order the reference writer uses (all bf16: by name), with their offsets. */
function planTensors(config: Readonly<Record<string, Json>>): { tensors: PlannedTensor[]; dataBytes: number } {
  const plan = tensorPlan(shapeOf(config)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let offset = 0;
  const tensors = plan.map(([name, shape, init]) => {
    const elements = shape.reduce((x, y) => x * y, 1);
    const t = { name, shape, init, elements, begin: offset };
    offset += elements * BF16_BYTES;
    return t;
  });
  return { tensors, dataBytes: offset };
}

/** The safetensors header (length prefix included), padded with spaces to 8-byte alignment. */
function headerBytes(tensors: readonly PlannedTensor[]): Uint8Array {
  const header: Record<string, Json> = { __metadata__: { format: 'pt' } };
  for (const t of tensors) {
    header[t.name] = { dtype: 'BF16', shape: [...t.shape], data_offsets: [t.begin, t.begin + t.elements * BF16_BYTES] };
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 8);
  return out;
}

export interface WrittenTwin {
  readonly dir: string;
  readonly config: Record<string, Json>;
  /** Bytes of tensor data in model.safetensors (header excluded). */
  readonly tensorBytes: number;
  readonly fileBytes: number;
}

function writeWeights(path: string, hubId: string, config: Readonly<Record<string, Json>>): { tensorBytes: number; fileBytes: number } {
  const { tensors, dataBytes } = planTensors(config);
  const header = headerBytes(tensors);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    const values = new Uint16Array(CHUNK);
    for (const t of tensors) {
      const stream = new UniformBf16Stream((WEIGHT_SEED ^ fnv1a32(`${hubId}/${t.name}`)) >>> 0);
      for (let done = 0; done < t.elements; done += CHUNK) {
        const chunk = values.subarray(0, Math.min(CHUNK, t.elements - done));
        stream.fill(chunk, t.init);
        writeSync(fd, chunk);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { tensorBytes: dataBytes, fileBytes: header.length + dataBytes };
}

function jsonText(value: Json): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Write a twin folder (config.json, generation_config.json, model.safetensors) under
 * `parent/<spec.id>`. Deterministic: the same spec and layer count give the same bytes.
 */
export function writeTwin(spec: TwinSpec, parent: string, layers: number = TWIN_LAYERS): WrittenTwin {
  const dir = join(parent, spec.id);
  mkdirSync(dir, { recursive: true });
  const config = twinConfig(spec, layers);
  writeFileSync(join(dir, 'config.json'), jsonText(config));
  writeFileSync(join(dir, 'generation_config.json'), jsonText(spec.generationConfig));
  const sizes = writeWeights(join(dir, 'model.safetensors'), spec.hubId, config);
  return { dir, config, ...sizes };
}
