import { describe, expect, it } from 'vitest';
import { encodeAdd } from '../../src/adapters/webgpu/ops/elementwise.ts';
import { GpuBuffers, setBufferReuseDebug } from '../../src/adapters/webgpu/gpu-buffers.ts';
import { maxAbsDiff, randomF32, testGpu } from './harness.ts';

describe('WebGPU infrastructure (Dawn in Node)', () => {
  it('creates a device with the adapter limits and optional features', async () => {
    const t = await testGpu();
    expect(t.gpu.caps.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(typeof t.gpu.caps.shaderF16).toBe('boolean');
    expect(t.gpu.isLost()).toBe(false);
  });

  it('residual add matches the CPU exactly, across the x/y grid split', async () => {
    const t = await testGpu();
    const n = 70_000;
    const a = randomF32(n, 1);
    const b = randomF32(n, 2);
    const ga = t.upload(a);
    const gb = t.upload(b);
    await t.run((enc, tr) => encodeAdd(t, enc, ga, gb, n, tr));
    const got = await t.readF32(ga, n);
    const want = a.map((v, i) => Math.fround(v + b[i]));
    expect(maxAbsDiff(got, want)).toBe(0);
  });

  it('compiles each pipeline once and reuses it', async () => {
    const t = await testGpu();
    const before = t.pipelines.compileCount;
    const ga = t.upload(new Float32Array(8));
    const gb = t.upload(new Float32Array(8).fill(1));
    for (let i = 0; i < 3; i++) await t.run((enc, tr) => encodeAdd(t, enc, ga, gb, 8, tr));
    expect(t.pipelines.compileCount - before).toBeLessThanOrEqual(1);
    expect([...(await t.readF32(ga, 8))]).toEqual(new Array(8).fill(3));
  });

  it('recycles transient buffers by size class; the debug switch turns reuse off', async () => {
    const t = await testGpu();
    const owner = new GpuBuffers(t.device);
    const a = owner.acquire('x', 1000);
    owner.release(a);
    expect(owner.acquire('y', 900)).toBe(a);
    setBufferReuseDebug(true);
    try {
      const b = owner.acquire('z', 5000);
      owner.release(b);
      expect(owner.stats().pooledBuffers).toBe(0);
      expect(owner.acquire('w', 5000)).not.toBe(b);
    } finally {
      setBufferReuseDebug(false);
    }
    expect(owner.stats().liveBuffers).toBe(2);
    owner.destroyAll();
    expect(owner.stats().liveBytes).toBe(0);
  });
});
