import ropeKvWgsl from '../kernels/rope_kv.wgsl?raw';
import ropeSincosWgsl from '../kernels/rope_sincos.wgsl?raw';
import { InvalidRequestError } from '../../../domain/errors.ts';
import { kvBytesPerElement, type KvDtype } from '../../../domain/model-cache-spec.ts';
import { dispatch, type KernelContext, type Recorder } from '../dispatch.ts';
import type { KernelSource } from '../pipelines.ts';
import { KV_STORE } from './attention.ts';
import { grid1d } from './elementwise.ts';

/** RoPE of q and k fused with the KV write (kernels/rope_kv.wgsl): bitwise rope, rope, kv_write. */
export const ROPE_KV: KernelSource = { name: 'rope_kv', code: `${ropeSincosWgsl}\n${ropeKvWgsl}` };

export interface RopeKvArgs {
  /** f32 [nTokens, nHeads, headDim], rotated in place (when rotateQ is not false). */
  readonly q: GPUBuffer;
  /** f32 [nTokens, nKvHeads, headDim]: new keys before RoPE (left unrotated) and values. */
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  /** One shard of the layer's pools [slot, nKvHeads, headDim] in kvDtype. */
  readonly kPool: GPUBuffer;
  readonly vPool: GPUBuffer;
  readonly kvDtype: KvDtype;
  /** u32 [nTokens] positions, f32 [headDim / 2] inverse frequencies, u32 [nTokens] slots. */
  readonly positions: GPUBuffer;
  readonly invFreq: GPUBuffer;
  readonly slots: GPUBuffer;
  /** First global slot of the bound shard (default 0). */
  readonly slotBase?: number;
  /** Rotate q in this dispatch (default true; false for the second shard of a sharded pool). */
  readonly rotateQ?: boolean;
  readonly nTokens: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
}

/** Whether the fused kernel serves this head size: it works on quads, so headDim % 4 == 0. */
export function ropeKvFits(headDim: number): boolean {
  return Number.isInteger(headDim) && headDim > 0 && headDim % 4 === 0;
}

function check(a: RopeKvArgs): void {
  const fail = (msg: string, details: Record<string, unknown> = {}): never => {
    throw new InvalidRequestError(`rope_kv: ${msg}`, details);
  };
  for (const [name, n] of [['nTokens', a.nTokens], ['nHeads', a.nHeads], ['nKvHeads', a.nKvHeads]] as const) {
    if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive integer`, { [name]: n });
  }
  if (!ropeKvFits(a.headDim)) fail(`headDim must be a multiple of 4, got ${a.headDim}`, { headDim: a.headDim });
  const sizes: [string, GPUBuffer, number][] = [
    ['q', a.q, a.nTokens * a.nHeads * a.headDim * 4],
    ['k', a.k, a.nTokens * a.nKvHeads * a.headDim * 4],
    ['v', a.v, a.nTokens * a.nKvHeads * a.headDim * 4],
    ['positions', a.positions, a.nTokens * 4],
    ['invFreq', a.invFreq, (a.headDim / 2) * 4],
    ['slots', a.slots, a.nTokens * 4],
  ];
  for (const [name, b, bytes] of sizes) if (b.size < bytes) fail(`${name} holds ${b.size} bytes, needs ${bytes}`, { name, bytes });
  const written = [a.q, a.kPool, a.vPool];
  const all = [a.q, a.k, a.v, a.kPool, a.vPool, a.positions, a.invFreq, a.slots];
  for (const w of written) if (all.filter((b) => b === w).length > 1) fail('a written buffer is bound twice', { label: w.label });
}

export function encodeRopeKv(ctx: KernelContext, encoder: Recorder, a: RopeKvArgs, transients: GPUBuffer[]): void {
  check(a);
  const half = a.headDim / 2;
  const row = a.nKvHeads * a.headDim;
  const poolSlots = Math.floor(Math.min(a.kPool.size, a.vPool.size) / (row * kvBytesPerElement(a.kvDtype)));
  if (poolSlots < 1) throw new InvalidRequestError('rope_kv: the KV pools hold no slot of this shape', { row });
  const threads = a.nTokens * (a.nHeads + a.nKvHeads) * (half / 2);
  const { groups, strideX } = grid1d(ctx, threads, 64);
  const uniforms = new Uint32Array([a.nTokens, a.nHeads, a.nKvHeads, half, strideX, poolSlots, a.slotBase ?? 0, a.rotateQ === false ? 0 : 1]);
  dispatch(ctx, encoder, ctx.pipelines.get(ROPE_KV, KV_STORE[a.kvDtype]), `rope_kv:${a.kvDtype}`, [a.q, a.k, a.kPool, a.vPool, a.v, a.positions, a.invFreq, a.slots], groups, uniforms, transients);
}
