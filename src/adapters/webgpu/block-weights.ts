/**
 * Weights that arrive already in a ggml block layout (a GGUF file, read tensor by tensor) as the
 * uploader's tensor map: matrices keep their bytes (BlockTensorEntry, decoded in the kernels'
 * w_at); vectors (norms, biases: F32 in practice) are widened to f32 here, as every backend keeps
 * them. Structural input, so any loader that yields these fields plugs in.
 */
import { dequantizeGgml } from '../../domain/gguf-blocks.ts';
import type { TensorEntry } from '../safetensors/index.ts';
import type { BlockTensorEntry } from './weights.ts';

export interface BlockWeight {
  /** The runtime's (HF) tensor name. */
  readonly name: string;
  readonly shape: readonly number[];
  /** ggml type name: F32, F16, BF16, Q8_0, Q4_K, ... */
  readonly type: string;
  readonly bytes: Uint8Array;
}

export async function blockWeightTensors(weights: AsyncIterable<BlockWeight>): Promise<Map<string, TensorEntry>> {
  const out = new Map<string, TensorEntry>();
  for await (const w of weights) {
    if (w.shape.length === 1) {
      const f32 = dequantizeGgml(w.type, w.bytes, w.shape[0], w.name);
      out.set(w.name, { dtype: 'F32', shape: w.shape, data: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength) });
    } else {
      const entry: BlockTensorEntry = { dtype: 'U8', shape: w.shape, data: w.bytes, ggmlType: w.type };
      out.set(w.name, entry);
    }
  }
  return out;
}
