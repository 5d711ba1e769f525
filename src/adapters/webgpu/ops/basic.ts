import embeddingWgsl from '../kernels/embedding.wgsl?raw';
import rmsnormWgsl from '../kernels/rmsnorm.wgsl?raw';
import ropeWgsl from '../kernels/rope.wgsl?raw';
import ropeSincosWgsl from '../kernels/rope_sincos.wgsl?raw';
import biasAddWgsl from '../kernels/bias_add.wgsl?raw';
import swigluWgsl from '../kernels/swiglu.wgsl?raw';
import gatherRowsWgsl from '../kernels/gather_rows.wgsl?raw';
import { InvalidRequestError } from '../../../domain/errors.ts';
import { dispatch, type Binding, type KernelContext, type Recorder } from '../dispatch.ts';
import { tensorParts, type GpuTensor } from '../gpu-tensor.ts';
import { fitsFormat, formatBytes, paddedBytes, weightVariant } from '../weight-formats.ts';
import type { KernelSource } from '../pipelines.ts';
import { grid1d } from './elementwise.ts';

/**
 * Kernels of the decoder layer besides matmul and attention: embedding gather, RMSNorm, RoPE,
 * bias add, SwiGLU and row gather. Every wrapper checks counts and binding sizes on the host and
 * throws InvalidRequestError before recording anything: a bad shape on the GPU would read out of
 * bounds silently (robust access clamps) instead of failing.
 */

export const EMBEDDING: KernelSource = { name: 'embedding', code: embeddingWgsl };
export const RMSNORM: KernelSource = { name: 'rmsnorm', code: rmsnormWgsl };
export const RMSNORM_INPLACE: KernelSource = { name: 'rmsnorm-inplace', code: rmsnormWgsl, entryPoint: 'main_inplace' };
export const ROPE: KernelSource = { name: 'rope', code: `${ropeSincosWgsl}\n${ropeWgsl}` };
export const BIAS_ADD: KernelSource = { name: 'bias_add', code: biasAddWgsl };
export const SWIGLU: KernelSource = { name: 'swiglu', code: swigluWgsl };
export const GATHER_ROWS: KernelSource = { name: 'gather_rows', code: gatherRowsWgsl };

const U32_MAX = 0xffffffff;

function isBuffer(b: Binding): b is GPUBuffer {
  return 'usage' in b && 'label' in b;
}

function bufferOf(b: Binding): GPUBuffer {
  return isBuffer(b) ? b : b.buffer;
}

function offsetOf(b: Binding): number {
  return isBuffer(b) ? 0 : (b.offset ?? 0);
}

/** Bytes a binding exposes: the explicit size, or the rest of the buffer after the offset. */
export function bindingBytes(b: Binding): number {
  if (isBuffer(b)) return b.size;
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

/** A positive integer count that also fits the u32 uniforms and indices of the kernels. */
export function requireCount(name: string, value: number, min = 1): void {
  if (!Number.isInteger(value) || value < min || value > U32_MAX) {
    throw new InvalidRequestError(`${name} must be an integer in [${min}, 2^32)`, { name, value });
  }
}

/** The binding must hold at least `bytes`; the count's product must also fit a u32 index. */
export function requireBytes(name: string, b: Binding, bytes: number): void {
  if (bytes / 4 > U32_MAX) {
    throw new InvalidRequestError(`${name} has more than 2^32 elements`, { name, bytes });
  }
  const have = bindingBytes(b);
  if (have < bytes) {
    throw new InvalidRequestError(`${name} holds ${have} bytes, needs ${bytes}`, { name, have, needed: bytes });
  }
}

/** One workgroup per row, spread over x then y when rows pass the per-dimension limit. */
function rowGrid(ctx: KernelContext, rows: number): { groups: [number, number]; groupsX: number } {
  const maxX = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(rows, maxX);
  return { groups: [x, Math.ceil(rows / x)], groupsX: x };
}

export interface EmbeddingArgs {
  /** [vocab, hidden] in any weight format; may be split by vocab rows (GpuTensor.parts). */
  readonly table: GpuTensor;
  /** u32 [nTokens]; ids >= vocab produce a zero row. */
  readonly tokenIds: Binding;
  /** f32 [nTokens, hidden]. */
  readonly out: Binding;
  readonly nTokens: number;
  readonly hidden: number;
}

export function encodeEmbedding(ctx: KernelContext, encoder: Recorder, args: EmbeddingArgs, transients: GPUBuffer[]): void {
  const { table, tokenIds, out, nTokens, hidden } = args;
  requireCount('nTokens', nTokens);
  requireCount('hidden', hidden);
  if (table.shape.length !== 2 || table.shape[1] !== hidden) {
    throw new InvalidRequestError(`embedding table shape [${table.shape.join(', ')}] is not [vocab, ${hidden}]`, {
      shape: [...table.shape],
      hidden,
    });
  }
  const vocab = table.shape[0];
  requireCount('vocab', vocab);
  if (!fitsFormat(table.dtype, hidden)) {
    throw new InvalidRequestError(`a ${table.dtype} embedding needs hidden to be a whole number of blocks`, { dtype: table.dtype, hidden });
  }
  const parts = tensorParts(table);
  const partBytes = (rows: number): number => paddedBytes(formatBytes(table.dtype, rows, hidden));
  for (const p of parts) requireBytes(parts.length > 1 ? `embedding table rows ${p.rowStart}+${p.rows}` : 'embedding table', p.buffer, partBytes(p.rows));
  requireBytes('tokenIds', tokenIds, nTokens * 4);
  requireBytes('embedding out', out, nTokens * hidden * 4);
  const n = nTokens * hidden;
  const { groups, strideX } = grid1d(ctx, n);
  const pipeline = ctx.pipelines.get(EMBEDDING, weightVariant(ctx.device, table.dtype));
  // One dispatch per part: each writes the outputs of the tokens whose row it holds (the last
  // one also the zero rows of out-of-vocabulary ids), so every output is written exactly once.
  parts.forEach((p, i) => {
    const zeroOob = i === parts.length - 1 ? 1 : 0;
    const uniforms = new Uint32Array([n, hidden, vocab, 0, strideX, p.rowStart, p.rows, zeroOob]);
    const label = `embedding:${table.dtype}${parts.length > 1 ? `:rows${p.rowStart}+${p.rows}` : ''}`;
    dispatch(ctx, encoder, pipeline, label, [tokenIds, { buffer: p.buffer, size: partBytes(p.rows) }, out], groups, uniforms, transients);
  });
}

export interface RmsNormArgs {
  /** f32 [rows, width]. */
  readonly input: Binding;
  /** f32 [width]. */
  readonly weight: Binding;
  /** f32 [rows, width]; may be the same buffer as `input` (in place). */
  readonly output: Binding;
  readonly rows: number;
  readonly width: number;
  readonly eps: number;
}

export function encodeRmsNorm(ctx: KernelContext, encoder: Recorder, args: RmsNormArgs, transients: GPUBuffer[]): void {
  const { input, weight, output, rows, width, eps } = args;
  requireCount('rows', rows);
  requireCount('width', width);
  if (!Number.isFinite(eps) || eps < 0) throw new InvalidRequestError('rmsnorm eps must be a finite number >= 0', { eps });
  requireBytes('rmsnorm input', input, rows * width * 4);
  requireBytes('rmsnorm weight', weight, width * 4);
  requireBytes('rmsnorm output', output, rows * width * 4);
  const { groups, groupsX } = rowGrid(ctx, rows);
  const raw = new ArrayBuffer(16);
  new Uint32Array(raw, 0, 3).set([rows, width, groupsX]);
  new Float32Array(raw, 12, 1)[0] = eps;
  const inPlace = bufferOf(input) === bufferOf(output);
  if (inPlace) {
    // Same buffer: the in-place entry point binds it once, read_write. The offsets must agree,
    // or rows would be written over rows not yet read.
    const inOffset = offsetOf(input);
    const outOffset = offsetOf(output);
    if (inOffset !== outOffset) {
      throw new InvalidRequestError('in-place rmsnorm needs input and output at the same offset', { inOffset, outOffset });
    }
    dispatch(ctx, encoder, ctx.pipelines.get(RMSNORM_INPLACE), 'rmsnorm-inplace', [output, weight], groups, raw, transients);
    return;
  }
  dispatch(ctx, encoder, ctx.pipelines.get(RMSNORM), 'rmsnorm', [input, weight, output], groups, raw, transients);
}

export interface RopeArgs {
  /** f32 [nTokens, nHeads, headDim], rotated in place. */
  readonly x: Binding;
  /** u32 [nTokens]. */
  readonly positions: Binding;
  /** f32 [headDim / 2], from ropeInvFreq. */
  readonly invFreq: Binding;
  readonly nTokens: number;
  readonly nHeads: number;
  readonly headDim: number;
}

export function encodeRope(ctx: KernelContext, encoder: Recorder, args: RopeArgs, transients: GPUBuffer[]): void {
  const { x, positions, invFreq, nTokens, nHeads, headDim } = args;
  requireCount('nTokens', nTokens);
  requireCount('nHeads', nHeads);
  requireCount('headDim', headDim, 2);
  if (headDim % 2 !== 0) throw new InvalidRequestError('RoPE headDim must be even', { headDim });
  const half = headDim / 2;
  requireBytes('rope x', x, nTokens * nHeads * headDim * 4);
  requireBytes('rope positions', positions, nTokens * 4);
  requireBytes('rope invFreq', invFreq, half * 4);
  const n = nTokens * nHeads * half;
  const { groups, strideX } = grid1d(ctx, n);
  dispatch(ctx, encoder, ctx.pipelines.get(ROPE), 'rope', [x, positions, invFreq], groups, new Uint32Array([n, nHeads, half, strideX]), transients);
}

export interface BiasAddArgs {
  /** f32 [rows, width], updated in place. */
  readonly x: Binding;
  /** f32 [width]. */
  readonly bias: Binding;
  readonly rows: number;
  readonly width: number;
}

export function encodeBiasAdd(ctx: KernelContext, encoder: Recorder, args: BiasAddArgs, transients: GPUBuffer[]): void {
  const { x, bias, rows, width } = args;
  requireCount('rows', rows);
  requireCount('width', width);
  requireBytes('bias-add x', x, rows * width * 4);
  requireBytes('bias', bias, width * 4);
  const n = rows * width;
  const { groups, strideX } = grid1d(ctx, n);
  dispatch(ctx, encoder, ctx.pipelines.get(BIAS_ADD), 'bias_add', [x, bias], groups, new Uint32Array([n, width, strideX, 0]), transients);
}

export interface SwigluArgs {
  /** f32 [n]. */
  readonly gate: Binding;
  /** f32 [n]. */
  readonly up: Binding;
  /** f32 [n]; a buffer distinct from gate and up. */
  readonly out: Binding;
  readonly n: number;
}

export function encodeSwiglu(ctx: KernelContext, encoder: Recorder, args: SwigluArgs, transients: GPUBuffer[]): void {
  const { gate, up, out, n } = args;
  requireCount('n', n);
  requireBytes('swiglu gate', gate, n * 4);
  requireBytes('swiglu up', up, n * 4);
  requireBytes('swiglu out', out, n * 4);
  if (bufferOf(out) === bufferOf(gate) || bufferOf(out) === bufferOf(up)) {
    throw new InvalidRequestError('swiglu out must be a buffer distinct from gate and up', {});
  }
  const { groups, strideX } = grid1d(ctx, n);
  dispatch(ctx, encoder, ctx.pipelines.get(SWIGLU), 'swiglu', [gate, up, out], groups, new Uint32Array([n, strideX, 0, 0]), transients);
}

export interface GatherRowsArgs {
  /** f32 [nRowsIn, width]; nRowsIn is taken from the binding size. */
  readonly input: Binding;
  /** u32 [nOut] row indices; an index >= nRowsIn gives a zero row. */
  readonly rows: Binding;
  /** f32 [nOut, width]. */
  readonly output: Binding;
  readonly nOut: number;
  readonly width: number;
}

export function encodeGatherRows(ctx: KernelContext, encoder: Recorder, args: GatherRowsArgs, transients: GPUBuffer[]): void {
  const { input, rows, output, nOut, width } = args;
  requireCount('nOut', nOut);
  requireCount('width', width);
  requireBytes('gather rows indices', rows, nOut * 4);
  requireBytes('gather rows output', output, nOut * width * 4);
  if (bufferOf(input) === bufferOf(output)) {
    throw new InvalidRequestError('gather rows output must be a buffer distinct from input', {});
  }
  // Pooled buffers are rounded up, so this bound may exceed the logical row count; it only keeps
  // reads inside the binding.
  const nRowsIn = Math.min(U32_MAX, Math.floor(bindingBytes(input) / (width * 4)));
  requireCount('gather rows input rows', nRowsIn);
  const n = nOut * width;
  const { groups, strideX } = grid1d(ctx, n);
  dispatch(ctx, encoder, ctx.pipelines.get(GATHER_ROWS), 'gather_rows', [input, rows, output], groups, new Uint32Array([n, width, nRowsIn, strideX]), transients);
}
