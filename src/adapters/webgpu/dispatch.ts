import { InvalidRequestError } from '../../domain/errors.ts';
import type { GpuBuffers } from './gpu-buffers.ts';
import type { PipelineCache } from './pipelines.ts';
import { Usage } from './usage.ts';

/** Everything a kernel wrapper needs to record work. */
export interface KernelContext {
  readonly device: GPUDevice;
  readonly buffers: GpuBuffers;
  readonly pipelines: PipelineCache;
}

/**
 * Where a kernel call records: a command encoder (the call opens and ends its own compute pass)
 * or a compute pass opened by beginStepPass (the call adds its dispatch to it, so a whole step is
 * one pass).
 */
export type Recorder = GPUCommandEncoder | GPUComputePassEncoder;

// Passes opened by beginStepPass. A WeakSet rather than a structural test: native WebGPU objects
// do not reliably answer `in` for their prototype methods.
const stepPasses = new WeakSet<object>();

/**
 * Debug and profiling switch: when true, beginStepPass hands back the encoder itself, so every
 * kernel call opens its own pass again (per-kernel GPU timestamps need a pass per kernel).
 */
export const passOptions = { passPerDispatch: false };

/**
 * The uniforms of a step's dispatches, packed into one buffer at aligned offsets and written with
 * one writeBuffer when the pass ends (before the caller submits), instead of a buffer and a write
 * per dispatch. Dispatches past `slots` fall back to their own buffer.
 */
interface StepUniforms {
  readonly ctx: KernelContext;
  readonly buffer: GPUBuffer;
  readonly staging: Uint8Array;
  readonly align: number;
  used: number;
}

const stepUniforms = new WeakMap<object, StepUniforms>();

/** Bytes reserved per dispatch in a step's uniform buffer (every kernel's uniforms fit in 64). */
const UNIFORM_SLOT = 256;

/**
 * Open one compute pass for a sequence of kernel calls; end it with endStepPass. With
 * `uniforms`, the calls' uniforms share one buffer of `slots` aligned slots (a transient).
 */
export function beginStepPass(
  encoder: GPUCommandEncoder,
  label: string,
  uniforms?: { readonly ctx: KernelContext; readonly slots: number; readonly transients: GPUBuffer[] },
): Recorder {
  if (passOptions.passPerDispatch) return encoder;
  const pass = encoder.beginComputePass({ label });
  stepPasses.add(pass);
  if (uniforms) {
    const { ctx, slots, transients } = uniforms;
    const align = Math.max(UNIFORM_SLOT, ctx.device.limits.minUniformBufferOffsetAlignment);
    const buffer = ctx.buffers.acquire(`${label}:uniforms`, slots * align, Usage.UNIFORM | Usage.COPY_DST);
    transients.push(buffer);
    stepUniforms.set(pass, { ctx, buffer, staging: new Uint8Array(slots * align), align, used: 0 });
  }
  return pass;
}

/** End a pass from beginStepPass, first writing its packed uniforms (one writeBuffer). */
export function endStepPass(recorder: Recorder): void {
  if (!stepPasses.has(recorder)) return;
  const u = stepUniforms.get(recorder);
  if (u && u.used > 0) u.ctx.buffers.write(u.buffer, u.staging.subarray(0, u.used));
  (recorder as GPUComputePassEncoder).end();
}

/** A slot of the step's uniform buffer holding `bytes`, or null when there is none left. */
function stepUniformSlot(recorder: Recorder, bytes: Uint8Array): GPUBufferBinding | null {
  const u = stepUniforms.get(recorder);
  if (!u || bytes.byteLength > u.align || u.used + u.align > u.staging.byteLength) return null;
  u.staging.set(bytes, u.used);
  const binding = { buffer: u.buffer, offset: u.used, size: Math.ceil(bytes.byteLength / 16) * 16 };
  u.used += u.align;
  return binding;
}

/** The recorder as a command encoder, for work a compute pass cannot hold (copies). */
export function commandEncoder(recorder: Recorder, what: string): GPUCommandEncoder {
  if (stepPasses.has(recorder)) throw new InvalidRequestError(`${what} needs a command encoder, not a compute pass`, { what });
  return recorder as GPUCommandEncoder;
}

export type Binding = GPUBuffer | { readonly buffer: GPUBuffer; readonly offset?: number; readonly size?: number };

/**
 * Record one compute dispatch. `bindings[i]` goes to @binding(i) of @group(0). When `uniforms`
 * is given it is uploaded into a small uniform buffer bound at the next binding index, so every
 * kernel reads its shapes from a uniform, never from constants baked into WGSL.
 */
export function dispatch(
  ctx: KernelContext,
  encoder: Recorder,
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
    const slot = stepUniformSlot(encoder, bytes);
    if (slot) {
      entries.push({ binding: bindings.length, resource: slot });
    } else {
      const ub = ctx.buffers.acquire(`${label}:uniforms`, Math.max(16, bytes.byteLength), Usage.UNIFORM | Usage.COPY_DST);
      ctx.buffers.write(ub, bytes);
      entries.push({ binding: bindings.length, resource: { buffer: ub, size: Math.ceil(bytes.byteLength / 16) * 16 } });
      transients?.push(ub);
    }
  }
  const group = ctx.device.createBindGroup({ label: `bind:${label}`, layout: pipeline.getBindGroupLayout(0), entries });
  const shared = stepPasses.has(encoder);
  const pass = shared ? (encoder as GPUComputePassEncoder) : (encoder as GPUCommandEncoder).beginComputePass({ label });
  if (shared) pass.pushDebugGroup(label);
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
  if (shared) pass.popDebugGroup();
  else pass.end();
}
