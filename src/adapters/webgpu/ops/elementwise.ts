import addWgsl from '../kernels/add.wgsl?raw';
import { dispatch, type Binding, type KernelContext, type Recorder } from '../dispatch.ts';
import type { KernelSource } from '../pipelines.ts';

export const ADD: KernelSource = { name: 'add', code: addWgsl };

const WG = 256;

/** Spread `n` threads over x (and y when x would pass the per-dimension limit). */
export function grid1d(ctx: KernelContext, n: number, perGroup = WG): { groups: [number, number]; strideX: number } {
  const total = Math.max(1, Math.ceil(n / perGroup));
  const maxX = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(total, maxX);
  return { groups: [x, Math.ceil(total / x)], strideX: x * perGroup };
}

/** a += b over n elements. */
export function encodeAdd(ctx: KernelContext, encoder: Recorder, a: Binding, b: Binding, n: number, transients: GPUBuffer[]): void {
  const { groups, strideX } = grid1d(ctx, n);
  dispatch(ctx, encoder, ctx.pipelines.get(ADD), 'add', [a, b], groups, new Uint32Array([n, strideX, 0, 0]), transients);
}
