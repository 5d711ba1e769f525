import { describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { DeviceLostError, InvalidRequestError } from '../../src/domain/errors.ts';
import { GREEDY } from '../../src/domain/sampling.ts';
import type { SequenceStep } from '../../src/ports/outbound.ts';
import { nodeGpu } from '../../src/adapters/node/dawn.ts';
import { FsModelSource } from '../../src/adapters/node/hf-folder.ts';
import { createGpuContext, guardDeviceLoss, type GpuContext } from '../../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../../src/adapters/webgpu/webgpu-backend.ts';

/**
 * Device loss is an event, not a crash. Every test here makes its own device (never the shared
 * test one, which other tests in the process keep using) and destroys it.
 */
const MODEL = join(import.meta.dirname, '..', '..', 'public', 'models', 'tiny-llama');

function step(tokenIds: number[], startPosition = 0): SequenceStep {
  return { tokenIds, startPosition, blockTable: [0], sample: true, sampling: GREEDY, sampleStep: 0 };
}

async function loadBackend(onLost?: (e: DeviceLostError) => void): Promise<{ gpu: GpuContext; backend: WebGpuBackend }> {
  const gpu = await createGpuContext({ gpu: nodeGpu(), onLost });
  const backend = await WebGpuBackend.load(gpu, new FsModelSource(MODEL), { kvBudgetBytes: 1024 * 1024 });
  return { gpu, backend };
}

describe('device loss', () => {
  it('device.destroy(): `lost` resolves with a typed DeviceLostError and onLost is called once', async () => {
    const onLost = vi.fn<(e: DeviceLostError) => void>();
    const gpu = await createGpuContext({ gpu: nodeGpu(), onLost });
    expect(gpu.isLost()).toBe(false);
    gpu.device.destroy();
    const error = await gpu.lost;
    expect(error).toBeInstanceOf(DeviceLostError);
    expect(error.name).toBe('DeviceLostError');
    expect(error.code).toBe('DEVICE_LOST');
    expect(error.details).toMatchObject({ reason: 'destroyed' });
    expect(error.toPlain()).toMatchObject({ __semanticError: true, name: 'DeviceLostError', code: 'DEVICE_LOST' });
    expect(gpu.isLost()).toBe(true);
    expect(onLost).toHaveBeenCalledTimes(1);
    expect(onLost).toHaveBeenCalledWith(error);
  });

  it('a backend on a lost device rejects forward and readBlocks with DeviceLostError', async () => {
    const onLost = vi.fn<(e: DeviceLostError) => void>();
    const { gpu, backend } = await loadBackend(onLost);
    const ok = await backend.forward([step([1, 2, 3])]);
    expect(ok.nextTokens[0]).toBeGreaterThanOrEqual(0);
    gpu.device.destroy();
    // Called at once, before `lost` has settled: the step is recorded on a destroyed device and
    // its readback fails; that must still surface as DeviceLostError.
    const immediate = backend.forward([step([4], 3)]);
    await expect(immediate).rejects.toBeInstanceOf(DeviceLostError);
    await gpu.lost;
    expect(onLost).toHaveBeenCalledTimes(1);
    await expect(backend.forward([step([4], 3)])).rejects.toMatchObject({ name: 'DeviceLostError', code: 'DEVICE_LOST' });
    await expect(backend.readBlocks([0], 3)).rejects.toBeInstanceOf(DeviceLostError);
    await expect(backend.writeBlocks([0], { tokens: 0, keys: [], values: [] })).rejects.toBeInstanceOf(DeviceLostError);
    backend.dispose();
  });

  it('a step in flight when the device is lost rejects with DeviceLostError, with the raw error as cause', async () => {
    const { gpu, backend } = await loadBackend();
    const inFlight = backend.forward([step([5, 6, 7, 8])]);
    gpu.device.destroy();
    const error: unknown = await inFlight.then(
      () => undefined,
      (e: unknown) => e,
    );
    // The step was submitted and its readback was pending: destroy aborts the mapAsync (a raw
    // DOMException AbortError), which the backend reports as the typed loss.
    expect(error).toBeInstanceOf(DeviceLostError);
    expect((error as DeviceLostError).details).toMatchObject({ reason: 'destroyed' });
    expect((error as DeviceLostError).cause).toMatchObject({ name: 'AbortError' });
    await expect(backend.forward([step([9])])).rejects.toBeInstanceOf(DeviceLostError);
    backend.dispose();
  });
});

describe('guardDeviceLoss', () => {
  function fakeContext(lost: Promise<DeviceLostError>, isLost: () => boolean): GpuContext {
    return { lost, isLost } as unknown as GpuContext;
  }

  it('passes typed errors and failures on a live device through unchanged', async () => {
    const ctx = fakeContext(new Promise(() => undefined), () => false);
    const invalid = new InvalidRequestError('bad');
    await expect(guardDeviceLoss(ctx, () => Promise.reject(invalid))).rejects.toBe(invalid);
    const raw = new TypeError('not a loss');
    await expect(guardDeviceLoss(ctx, () => Promise.reject(raw))).rejects.toBe(raw);
    await expect(guardDeviceLoss(ctx, () => Promise.resolve(7))).resolves.toBe(7);
  });

  it('turns a raw failure into DeviceLostError when the device is lost just after it', async () => {
    let resolveLost: (e: DeviceLostError) => void = () => undefined;
    let lostFlag = false;
    const lost = new Promise<DeviceLostError>((resolve) => {
      resolveLost = (e) => {
        lostFlag = true;
        resolve(e);
      };
    });
    const ctx = fakeContext(lost, () => lostFlag);
    const abort = new Error('mapAsync aborted');
    setTimeout(() => resolveLost(new DeviceLostError('GPU device lost: gone', { reason: 'unknown' })), 20);
    const error: unknown = await guardDeviceLoss(ctx, () => Promise.reject(abort)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceLostError);
    expect((error as DeviceLostError).cause).toBe(abort);
    expect((error as DeviceLostError).details).toEqual({ reason: 'unknown' });
    let ran = false;
    await expect(
      guardDeviceLoss(ctx, async () => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(DeviceLostError);
    expect(ran).toBe(false);
  });
});
