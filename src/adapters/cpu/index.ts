export * from './ops.ts';
export { CpuKvCache } from './kv-cache.ts';
export { CpuReferenceModel, type ForwardOptions, type GreedyOptions, type GreedyResult } from './cpu-model.ts';
export { loadCpuModel, loadModelConfig, loadWeights, type LoadedCpuModel, type LoadedTensor } from './load.ts';
