/**
 * Measures a model load's host memory in a process of its own (test/gpu/load-memory.test.ts,
 * and by hand: `node tools/load-peak.mjs <model dir> [stream|whole]`). Prints one JSON line:
 * the RSS high-water mark (process.resourceUsage().maxRSS) once the GPU device exists and the
 * modules are loaded (baseline), and again after the load, with the GPU bytes the load
 * allocated. On a CPU adapter (SwiftShader, lavapipe) GPU buffers are host memory, so they are
 * part of the RSS too and the caller adds them to its bound.
 *
 * `whole` is the old path for comparison: the checkpoint read into memory, then uploaded.
 */
import { resolve } from 'node:path';
import { nodeGpu } from '../src/adapters/node/dawn.ts';
import { FsModelSource } from '../src/adapters/node/hf-folder.ts';
import { readCheckpoint, readJsonFile } from '../src/adapters/safetensors/index.ts';
import { parseModelConfig } from '../src/domain/model-config.ts';
import { createGpuContext } from '../src/adapters/webgpu/device.ts';
import { GpuBuffers } from '../src/adapters/webgpu/gpu-buffers.ts';
import { uploadWeights } from '../src/adapters/webgpu/weights.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';

const KIB = 1024;

async function loadWhole(dir: string, device: GPUDevice, maxBinding: number): Promise<number> {
  const source = new FsModelSource(dir);
  const config = parseModelConfig(await readJsonFile(source, 'config.json'));
  const checkpoint = await readCheckpoint(source);
  const buffers = new GpuBuffers(device);
  const weights = await uploadWeights(buffers, maxBinding, config, checkpoint.tensors);
  await buffers.flushWrites();
  return weights.bytes;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [dir, mode = 'stream'] = argv;
  if (!dir || (mode !== 'stream' && mode !== 'whole')) {
    process.stderr.write('usage: load-peak <model dir> [stream|whole]\n');
    return 2;
  }
  const gpu = await createGpuContext({ gpu: nodeGpu() });
  const baselineRss = process.resourceUsage().maxRSS * KIB;
  let gpuWeightBytes: number;
  let progressEvents = 0;
  if (mode === 'whole') {
    gpuWeightBytes = await loadWhole(resolve(dir), gpu.device, gpu.caps.maxStorageBufferBindingSize);
  } else {
    const backend = await WebGpuBackend.load(gpu, new FsModelSource(resolve(dir)), { kvBudgetBytes: 1 << 20, onProgress: () => progressEvents++ });
    await gpu.device.queue.onSubmittedWorkDone();
    gpuWeightBytes = backend.weightBytes;
  }
  const peakRss = process.resourceUsage().maxRSS * KIB;
  process.stdout.write(`${JSON.stringify({ mode, baselineRss, peakRss, gpuWeightBytes, progressEvents })}\n`);
  gpu.device.destroy();
  return 0;
}
