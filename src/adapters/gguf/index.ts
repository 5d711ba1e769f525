export { readGguf, readTensorBytes, parseGgufHeader, type GgufFile, type GgufTensorInfo, type ReadGgufOptions } from './reader.ts';
export { GGUF_VALUE_TYPE, type GgufValue, type GgufArray, type GgufScalar } from './metadata.ts';
export { type GgufFormatReason } from './cursor.ts';
export { MemoryRangeSource } from './memory-source.ts';
