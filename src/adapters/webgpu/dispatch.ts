import type { GpuBuffers } from './gpu-buffers.ts';
import type { PipelineCache } from './pipelines.ts';
import { Usage } from './usage.ts';

/** Everything a kernel wrapper needs to record work. */
export interface KernelContext {
  readonly device: GPUDevice;
  readonly buffers: GpuBuffers;
  readonly pipelines: PipelineCache;
}

export type Binding = GPUBuffer | { readonly buffer: GPUBuffer; readonly offset?: number; readonly size?: number };

/**
 * Record one compute dispatch. `bindings[i]` goes to @binding(i) of @group(0). When `uniforms`
 * is given it is uploaded into a small uniform buffer bound at the next binding index, so every
 * kernel reads its shapes from a uniform, never from constants baked into WGSL.
 */
export function dispatch(
  ctx: KernelContext,
  encoder: GPUCommandEncoder,
  pipeline: GPUComputePipeline,
  label: string,
  bindings: readonly Binding[],
  workgroups: readonly [number, number?, number?],
  uniforms?: Uint32Array | Float32Array | ArrayBuffer,
  transients?: GPUBuffer[],
): void {
  const entries: GPUBindGroupEntry[] = bindings.map((b, i) => ({
    binding: i,
    resource: 'label' in b && 'usage' in b ? { buffer: b } : { buffer: b.buffer, offset: b.offset, size: b.size },
  }));
  if (uniforms) {
    const bytes = uniforms instanceof ArrayBuffer ? new Uint8Array(uniforms) : new Uint8Array(uniforms.buffer, uniforms.byteOffset, uniforms.byteLength);
    const ub = ctx.buffers.acquire(`${label}:uniforms`, Math.max(16, bytes.byteLength), Usage.UNIFORM | Usage.COPY_DST);
    ctx.buffers.write(ub, bytes);
    entries.push({ binding: bindings.length, resource: { buffer: ub, size: Math.ceil(bytes.byteLength / 16) * 16 } });
    transients?.push(ub);
  }
  const group = ctx.device.createBindGroup({ label: `bind:${label}`, layout: pipeline.getBindGroupLayout(0), entries });
  const pass = encoder.beginComputePass({ label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
  pass.end();
}
