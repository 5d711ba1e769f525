import { BlockPool } from '/work/wt-shapes/src/domain/block-pool.ts';
import { nodeGpu } from '/work/wt-shapes/src/adapters/node/dawn.ts';
import { createGpuContext } from '/work/wt-shapes/src/adapters/webgpu/device.ts';
import { FsModelSource } from '/work/wt-shapes/src/adapters/node/hf-folder.ts';
import { WebGpuBackend } from '/work/wt-shapes/src/adapters/webgpu/webgpu-backend.ts';
export async function main(args: string[]): Promise<number> {
  const gpu = await createGpuContext({ gpu: nodeGpu() });
  let t = performance.now();
  const lap = (s: string) => { const n = performance.now(); console.log(s, ((n - t) / 1000).toFixed(2)); t = n; };
  const b = await WebGpuBackend.load(gpu, new FsModelSource(args[0]), { kvBudgetBytes: 8 << 20 });
  lap('load');
  const sampling = { temperature: 0, topK: 0, topP: 1, seed: 0 };
  for (let i = 0; i < 4; i++) {
    await b.forward([{ tokenIds: [1], startPosition: i, blockTable: [0], sample: true, sampling, sampleStep: 0 }]);
    lap('decode M=1');
  }
  for (let i = 0; i < 2; i++) {
    await b.forward([{ tokenIds: [1,2,3,4,5,6,7], startPosition: 0, blockTable: [0], sample: true, sampling, sampleStep: 0 }]);
    lap('prefill 7');
  }
  for (let i = 0; i < 2; i++) {
    await b.forward([0,1,2,3].map((s) => ({ tokenIds: [1], startPosition: 3, blockTable: [s], sample: true, sampling, sampleStep: 0 })));
    lap('decode M=4');
  }
  return 0;
}
