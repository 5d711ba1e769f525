export { readGguf, readTensorBytes, parseGgufHeader, type GgufFile, type GgufTensorInfo, type ReadGgufOptions } from './reader.ts';
export { GGUF_VALUE_TYPE, type GgufValue, type GgufArray, type GgufScalar } from './metadata.ts';
export { type GgufFormatReason } from './cursor.ts';
export { MemoryRangeSource } from './memory-source.ts';
export { ggufModelConfig, ggufArchitecture, metaNumber, metaString } from './model-config.ts';
export { hfTensorName, unpermuteRows, readGgufWeight, dequantizeWeight, readRopeFactors, type GgufWeight } from './weights.ts';
export { openGgufModel, readGgufWeightsF32, type GgufModel } from './model.ts';
export { ggufTokenizerFiles, GgufTokenizerSource, spmMerges } from './tokenizer.ts';
