import tiledWgsl from '../kernels/matmul_tiled.wgsl?raw';
import vecWgsl from '../kernels/matmul_vec.wgsl?raw';
import { InvalidRequestError } from '../../../domain/errors.ts';
import { dispatch, type Binding, type KernelContext, type Recorder } from '../dispatch.ts';
import { tensorParts, type GpuTensor } from '../gpu-tensor.ts';
import { isCpuDevice } from '../device.ts';
import type { KernelSource } from '../pipelines.ts';
import { paddedBytes, fitsFormat, formatBytes, isGpuDtype, weightVariant } from '../weight-formats.ts';

/**
 * y = x Wᵀ (+ b) with HF Linear weights W [N, K], on the GPU.
 *
 * Two kernels: a shared-memory tiled one for prefill (many rows) and a matvec / small-batch one
 * for decode (few rows), each with one variant per weight format (weight-formats.ts: f32, f16,
 * bf16 and the q8/q4 blocks, dequantized in registers by the format's w_at). Both compute
 * every output with the same sequential f32 reduction (see the kernels' headers), so row r's
 * result is bitwise the same whatever M is and whichever kernel ran: greedy decoding gives the
 * same tokens alone and in a batch, and chunking a prefill does not change results. A W split
 * by rows (GpuTensor.parts) runs one dispatch per part into its columns of `out` (out_stride,
 * out_col0 uniforms): each output is still that one reduction, so splitting changes no bit.
 */
export const MATMUL_TILED: KernelSource = { name: 'matmul_tiled', code: tiledWgsl };
export const MATMUL_VEC: KernelSource = { name: 'matmul_vec', code: vecWgsl };

export type MatmulKernel = 'tiled' | 'vec';

/** Largest M the decode (vec) kernel is chosen for; above it the tiled kernel runs. */
export const MATMUL_VEC_MAX_ROWS = 16;

// Output tile of one workgroup; must match the constants in the .wgsl files.
const TILED_TILE_M = 64;
const TILED_TILE_N = 64;
const VEC_TILE_N = 64;

export interface MatmulArgs {
  /** Activations [xOffsetRows + M, K], f32 row-major. */
  readonly x: GPUBuffer;
  /**
   * Weights [N, K] (HF Linear layout) in any weight format (weight-formats.ts). May be
   * split by rows (`parts`, for a W over the binding limit): one dispatch per part.
   */
  readonly w: GpuTensor;
  /** [N] f32, optional; added after the reduction. */
  readonly bias?: GPUBuffer;
  /** [M, N] f32. Must not be x, w or bias. */
  readonly out: GPUBuffer;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  /** Add the result to what `out` holds (a fused residual add) instead of overwriting it. */
  readonly accumulate?: boolean;
  /** First row of x to read (default 0): lets a caller process a chunk of a larger activation. */
  readonly xOffsetRows?: number;
  /** Names the dispatch in GPU labels (e.g. 'layer3.q_proj'). */
  readonly label?: string;
}

/**
 * The kernel encodeMatmul picks for M rows. On a CPU adapter the barrier-free vec kernel wins at
 * every M (measured on SwiftShader: 2-6x over the tiled one at M = 64); both kernels give
 * bitwise-equal rows, so the choice changes speed only.
 */
export function chooseMatmulKernel(M: number, cpu = false): MatmulKernel {
  return M <= MATMUL_VEC_MAX_ROWS || cpu ? 'vec' : 'tiled';
}

/** Rows per workgroup of the vec kernel: fewer accumulators when M is 1 (plain decode). */
function vecRows(M: number): 1 | 4 | 8 {
  if (M <= 1) return 1;
  return M <= 4 ? 4 : 8;
}

function isCount(v: number): boolean {
  return Number.isSafeInteger(v) && v > 0;
}

/** One dispatch's slice of W: rows [rowStart, rowStart + rows) of W, i.e. those output columns. */
interface WeightPart {
  readonly buffer: GPUBuffer;
  readonly rowStart: number;
  readonly rows: number;
  readonly bytes: number;
}

interface MatmulLayout {
  readonly xBytes: number;
  readonly parts: readonly WeightPart[];
  readonly outBytes: number;
  readonly biasBytes: number;
  readonly row0: number;
}

/** Check every shape and size in TS, so a bad call is an InvalidRequestError, never a GPU error. */
export function validateMatmul(ctx: KernelContext, args: MatmulArgs): MatmulLayout {
  const { M, N, K, w } = args;
  const row0 = args.xOffsetRows ?? 0;
  const fail = (message: string): never => {
    throw new InvalidRequestError(`matmul: ${message}`, { M, N, K, xOffsetRows: row0, wShape: [...w.shape], dtype: w.dtype });
  };
  if (!isCount(M) || !isCount(N) || !isCount(K)) fail('M, N and K must be positive integers');
  if (!Number.isSafeInteger(row0) || row0 < 0) fail('xOffsetRows must be a non-negative integer');
  if (!isGpuDtype(w.dtype)) fail(`unsupported weight dtype ${String(w.dtype)}`);
  if (w.shape.length !== 2 || w.shape[0] !== N || w.shape[1] !== K) fail(`weight shape [${w.shape.join(', ')}] is not [N, K] = [${N}, ${K}]`);
  if (!fitsFormat(w.dtype, K)) fail(`${w.dtype} weights need K to be a whole number of blocks`);
  // The kernels index with u32; keep every flat index below 2^32 (W is indexed within a part).
  const parts = tensorParts(w).map((p) => ({ ...p, bytes: paddedBytes(formatBytes(w.dtype, p.rows, K)) }));
  if ((row0 + M) * K >= 2 ** 32 || M * N >= 2 ** 32 || parts.some((p) => p.rows * K >= 2 ** 32)) fail('a flat index would overflow u32');
  const layout: MatmulLayout = {
    xBytes: (row0 + M) * K * 4,
    parts,
    outBytes: M * N * 4,
    biasBytes: N * 4,
    row0,
  };
  const sized: [string, GPUBuffer | undefined, number][] = [
    ['x', args.x, layout.xBytes],
    ...parts.map((p): [string, GPUBuffer, number] => [parts.length > 1 ? `w rows ${p.rowStart}+${p.rows}` : 'w', p.buffer, p.bytes]),
    ['out', args.out, layout.outBytes],
    ['bias', args.bias, layout.biasBytes],
  ];
  const maxBinding = ctx.device.limits.maxStorageBufferBindingSize;
  for (const [name, buffer, bytes] of sized) {
    if (!buffer) continue;
    if (buffer.size < bytes) fail(`${name} buffer holds ${buffer.size} bytes, needs ${bytes}`);
    if (bytes > maxBinding) fail(`${name} needs ${bytes} bytes in one binding; the device allows ${maxBinding}`);
  }
  // WebGPU forbids a writable binding aliasing another binding of the same dispatch.
  if (args.out === args.x || args.out === args.bias || parts.some((p) => p.buffer === args.out)) fail('out must not alias x, w or bias');
  return layout;
}

/** Number workgroups 0..total-1 over x, spilling into y past maxComputeWorkgroupsPerDimension. */
function spreadGroups(ctx: KernelContext, total: number): [number, number] {
  const maxDim = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(total, maxDim);
  const gy = Math.ceil(total / gx);
  if (gy > maxDim) throw new InvalidRequestError(`matmul: ${total} workgroups exceed the device grid`, { total, maxDim });
  return [gx, gy];
}

/** out[M, N] = x[M, K] Wᵀ (+ bias), with the kernel chosen by M. */
export function encodeMatmul(ctx: KernelContext, encoder: Recorder, args: MatmulArgs, transients: GPUBuffer[]): void {
  encodeMatmulWith(ctx, encoder, args, transients, chooseMatmulKernel(args.M, isCpuDevice(ctx.device)));
}

/**
 * encodeMatmul with an explicit kernel. Either kernel is correct for any M (the vec kernel loops
 * over row blocks); tests use this to check that both give bitwise-equal rows.
 */
export function encodeMatmulWith(
  ctx: KernelContext,
  encoder: Recorder,
  args: MatmulArgs,
  transients: GPUBuffer[],
  kernel: MatmulKernel,
): void {
  const layout = validateMatmul(ctx, args);
  const { M, N, K, w } = args;
  // The format's accessor is prepended to the kernel, so every format shares one reduction loop
  // verbatim: variants differ only in how w_at turns stored bytes into an f32.
  const weights = weightVariant(ctx.device, w.dtype);
  const rows = vecRows(M);
  const pipeline =
    kernel === 'tiled' ? ctx.pipelines.get(MATMUL_TILED, weights) : ctx.pipelines.get(MATMUL_VEC, { ...weights, constants: { ROWS: rows } });
  const tilesM = kernel === 'tiled' ? Math.ceil(M / TILED_TILE_M) : Math.ceil(M / rows);
  const label = `${args.label ?? 'matmul'}:${kernel}:${w.dtype}`;
  // One dispatch per weight part (one for an unsplit W). Part p computes output columns
  // [rowStart, rowStart + rows) of every row, written at out[m * N + rowStart + n]: each output
  // is the same single sequential reduction whichever part computes it, so a split W gives
  // bitwise the result of the unsplit one, and batch invariance is untouched.
  for (const part of layout.parts) {
    const tilesN = Math.ceil(part.rows / (kernel === 'tiled' ? TILED_TILE_N : VEC_TILE_N));
    const total = tilesN * tilesM;
    const [gx, gy] = spreadGroups(ctx, total);
    const bindings: Binding[] = [
      { buffer: args.x, size: layout.xBytes },
      { buffer: part.buffer, size: part.bytes },
      // Without a bias the kernel never reads binding 2, but the pipeline layout still has it:
      // bind x there (read-only aliasing is allowed) rather than allocate a dummy buffer.
      args.bias ? { buffer: args.bias, size: layout.biasBytes } : { buffer: args.x, size: layout.xBytes },
      { buffer: args.out, size: layout.outBytes },
    ];
    const uniforms = new Uint32Array([M, part.rows, K, layout.row0, tilesN, gx, args.bias ? 1 : 0, total, N, part.rowStart, args.accumulate ? 1 : 0, 0]);
    const partLabel = layout.parts.length > 1 ? `${label}:rows${part.rowStart}+${part.rows}` : label;
    dispatch(ctx, encoder, pipeline, partLabel, bindings, [gx, gy], uniforms, transients);
  }
}
