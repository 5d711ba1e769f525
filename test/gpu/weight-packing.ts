import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from '../../src/domain/half.ts';
import { dequantizeBlocks, quantizeBlocks } from '../../src/domain/weight-blocks.ts';
import { dequantizeGgml } from '../../src/domain/gguf-blocks.ts';
import type { GgmlTypeName } from '../../src/domain/ggml-types.ts';
import { quantizeGgml } from '../../tools/ggml-quantize.ts';
import type { GpuDtype } from '../../src/adapters/webgpu/weight-formats.ts';

export const ALL_WEIGHT_DTYPES: readonly GpuDtype[] = ['f32', 'f16', 'bf16', 'q8', 'q4'];

/**
 * A row-major [rows, cols] f32 matrix in a GPU weight format: `packed` is what goes to the GPU,
 * `ref` the f32 values it stands for (rounded or dequantized exactly as the kernels decode it),
 * which is what the CPU reference must be run on.
 */
export function packMatrix(dtype: GpuDtype, w32: Float32Array, cols: number): { ref: Float32Array; packed: Float32Array | Uint16Array | Uint8Array } {
  switch (dtype) {
    case 'f32':
      return { ref: w32, packed: w32 };
    case 'f16': {
      const packed = f32ArrayToF16(w32);
      return { ref: f16ArrayToF32(packed), packed };
    }
    case 'bf16': {
      const packed = f32ArrayToBf16(w32);
      return { ref: bf16ArrayToF32(packed), packed };
    }
    case 'q8':
    case 'q4': {
      const packed = quantizeBlocks(dtype, w32, cols);
      return { ref: dequantizeBlocks(dtype, packed, w32.length), packed };
    }
    default: {
      // GGUF layouts kept as files store them: quantized by the fixture tools, decoded by the domain.
      const type = dtype.toUpperCase() as GgmlTypeName;
      const packed = quantizeGgml(type, w32);
      return { ref: dequantizeGgml(type, packed, w32.length), packed };
    }
  }
}

/** The GGUF block formats the kernels read in place (K-quants need rows of 256). */
export const GGUF_WEIGHT_DTYPES: readonly GpuDtype[] = ['q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'];
