/**
 * The one owner of compute pipelines: compiled once per kernel name and key, then reused.
 * A key names a variant of the same WGSL (f16 vs f32 weights, workgroup size); shapes are never
 * part of a key: they arrive as uniforms.
 */
export interface KernelSource {
  /** Stable name, used in labels and cache keys. */
  readonly name: string;
  /** WGSL text (imported from a .wgsl file with `?raw`). */
  readonly code: string;
  readonly entryPoint?: string;
}

export interface PipelineVariant {
  /** Distinguishes variants of the same kernel; '' for the default. */
  readonly key?: string;
  /** Source rewrite for the variant (e.g. enabling f16); must be a pure function of `key`. */
  readonly transform?: (code: string) => string;
  /** WGSL `override` constants. */
  readonly constants?: Readonly<Record<string, number>>;
}

const perDevice = new WeakMap<GPUDevice, PipelineCache>();

export class PipelineCache {
  /** One cache per device: compiling WGSL is the slow part of loading a model, so share it. */
  static for(device: GPUDevice): PipelineCache {
    let cache = perDevice.get(device);
    if (!cache) {
      cache = new PipelineCache(device);
      perDevice.set(device, cache);
    }
    return cache;
  }

  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();
  compileCount = 0;

  constructor(private readonly device: GPUDevice) {}

  get(kernel: KernelSource, variant: PipelineVariant = {}): GPUComputePipeline {
    const key = variant.key ?? '';
    const constantsKey = variant.constants ? JSON.stringify(Object.entries(variant.constants).sort()) : '';
    const id = `${kernel.name}|${key}|${constantsKey}`;
    const cached = this.pipelines.get(id);
    if (cached) return cached;
    const module = this.module(kernel, key, variant.transform);
    const pipeline = this.device.createComputePipeline({
      label: `pipeline:${kernel.name}${key ? `:${key}` : ''}`,
      layout: 'auto',
      compute: { module, entryPoint: kernel.entryPoint ?? 'main', ...(variant.constants ? { constants: { ...variant.constants } } : {}) },
    });
    this.compileCount++;
    this.pipelines.set(id, pipeline);
    return pipeline;
  }

  get size(): number {
    return this.pipelines.size;
  }

  private module(kernel: KernelSource, key: string, transform?: (code: string) => string): GPUShaderModule {
    const id = `${kernel.name}|${key}`;
    const cached = this.modules.get(id);
    if (cached) return cached;
    const module = this.device.createShaderModule({
      label: `shader:${kernel.name}${key ? `:${key}` : ''}`,
      code: transform ? transform(kernel.code) : kernel.code,
    });
    this.modules.set(id, module);
    return module;
  }
}
