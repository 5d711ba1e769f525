import { nodeGpu } from '../../src/adapters/node/dawn.ts';
import { createGpuContext, type GpuContext } from '../../src/adapters/webgpu/device.ts';
import { GpuBuffers } from '../../src/adapters/webgpu/gpu-buffers.ts';
import { PipelineCache } from '../../src/adapters/webgpu/pipelines.ts';
import type { KernelContext } from '../../src/adapters/webgpu/dispatch.ts';

/** Real WebGPU in Node: Dawn over SwiftShader (or the Vulkan driver the environment names). */
export interface TestGpu extends KernelContext {
  readonly gpu: GpuContext;
  /** Record work with `record`, submit it, release transients, and wait for the queue. */
  run(record: (encoder: GPUCommandEncoder, transients: GPUBuffer[]) => void): Promise<void>;
  upload(data: Float32Array | Uint32Array | Int32Array | Uint16Array | Uint8Array): GPUBuffer;
  zeros(bytes: number): GPUBuffer;
  readF32(buffer: GPUBuffer, count: number): Promise<Float32Array>;
  readU32(buffer: GPUBuffer, count: number): Promise<Uint32Array>;
}

let shared: Promise<TestGpu> | undefined;

export function testGpu(): Promise<TestGpu> {
  shared ??= create();
  return shared;
}

async function create(): Promise<TestGpu> {
  const gpu = await createGpuContext({ gpu: nodeGpu() });
  const device = gpu.device;
  const buffers = new GpuBuffers(device);
  const pipelines = PipelineCache.for(device);
  let n = 0;
  return {
    gpu,
    device,
    buffers,
    pipelines,
    async run(record) {
      const encoder = device.createCommandEncoder({ label: 'test' });
      const transients: GPUBuffer[] = [];
      device.pushErrorScope('validation');
      try {
        record(encoder, transients);
        device.queue.submit([encoder.finish()]);
      } catch (e) {
        await device.popErrorScope();
        throw e;
      } finally {
        for (const t of transients) buffers.release(t);
      }
      const error = await device.popErrorScope();
      if (error) throw new Error(`WebGPU validation error: ${error.message}`);
      await device.queue.onSubmittedWorkDone();
    },
    upload: (data) => buffers.upload(`test:upload:${n++}`, data),
    zeros: (bytes) => buffers.upload(`test:zeros:${n++}`, new Uint8Array(bytes)),
    readF32: async (buffer, count) => new Float32Array(await buffers.read(buffer, count * 4)),
    readU32: async (buffer, count) => new Uint32Array(await buffers.read(buffer, count * 4)),
  };
}

/** Max |a - b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic pseudo-random floats in [-scale, scale) (mulberry32). */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}
