/** Safetensors codec: parse untrusted bytes, serialize tensors, typed access to the data. */
export {
  DTYPE_BYTES,
  SAFETENSORS_DTYPES,
  dtypeByteSize,
  isSafetensorsDtype,
  type SafetensorsDtype,
} from './dtype.ts';
export {
  DEFAULT_MAX_HEADER_BYTES,
  parseSafetensors,
  type CorruptReason,
  type ParseSafetensorsOptions,
  type SafetensorsFile,
  type TensorEntry,
} from './parse.ts';
export { serializeSafetensors, type TensorInput, type TensorInputs } from './serialize.ts';
export { tensorToFloat32, typedView, type TypedArrayByDtype, type TypedArrayFor } from './views.ts';
export { readCheckpoint, readJsonFile, SHARD_INDEX, SINGLE_FILE, type Checkpoint } from './checkpoint.ts';
export {
  streamCheckpoint,
  type CheckpointConsumer,
  type CheckpointProgress,
  type StreamCheckpointOptions,
  type StreamedTensor,
  type TensorHeader,
} from './checkpoint-stream.ts';
