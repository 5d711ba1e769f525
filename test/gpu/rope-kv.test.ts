import { describe, expect, it } from 'vitest';
import { encodeRope } from '../../src/adapters/webgpu/ops/basic.ts';
import { encodeKvWrite } from '../../src/adapters/webgpu/ops/attention.ts';
import { encodeRopeKv, ropeKvFits } from '../../src/adapters/webgpu/ops/rope-kv.ts';
import { InvalidRequestError } from '../../src/domain/errors.ts';
import type { KvDtype } from '../../src/domain/model-cache-spec.ts';
import { randomF32, testGpu, type TestGpu } from './harness.ts';

// The fused kernel must give bitwise what rope(q), rope(k) and kv_write give, so that fusing
// changes no result: q after rotation, and the whole pool (slots written and slots left alone).
const [T, NH, NKV, HD] = [5, 6, 2, 16];
const POOL_SLOTS = 24;
const positions = new Uint32Array([0, 7, 8, 31, 1000]);
const slots = new Uint32Array([3, 17, 4, 22, 9]);

interface Run {
  readonly q: Float32Array;
  readonly kPool: Uint32Array;
  readonly vPool: Uint32Array;
}

async function run(t: TestGpu, dtype: KvDtype, fused: boolean, slotBase: number, rotateQ: boolean): Promise<Run> {
  const q = t.upload(randomF32(T * NH * HD, 1, 2));
  const kData = randomF32(T * NKV * HD, 2, 2);
  const k = t.upload(kData);
  const v = t.upload(randomF32(T * NKV * HD, 3, 2));
  const poolBytes = (POOL_SLOTS * NKV * HD * (dtype === 'f16' ? 2 : 4));
  const garbage = (seed: number): Uint32Array => new Uint32Array(randomF32(poolBytes / 4, seed, 9).buffer);
  const kPool = t.upload(garbage(4));
  const vPool = t.upload(garbage(5));
  const pos = t.upload(positions);
  const invFreq = t.upload(Float32Array.from({ length: HD / 2 }, (_, i) => 10000 ** (-(2 * i) / HD)));
  const sl = t.upload(slots);
  await t.run((enc, tr) => {
    if (fused) {
      encodeRopeKv(t, enc, { q, k, v, kPool, vPool, kvDtype: dtype, positions: pos, invFreq, slots: sl, slotBase, rotateQ, nTokens: T, nHeads: NH, nKvHeads: NKV, headDim: HD }, tr);
      return;
    }
    const rope = { positions: pos, invFreq, nTokens: T, headDim: HD };
    if (rotateQ) encodeRope(t, enc, { ...rope, x: q, nHeads: NH }, tr);
    encodeRope(t, enc, { ...rope, x: k, nHeads: NKV }, tr);
    encodeKvWrite(t, enc, { k, v, kPool, vPool, kvDtype: dtype, slots: sl, slotBase, nTokens: T, nKvHeads: NKV, headDim: HD }, tr);
  });
  const out = { q: await t.readF32(q, T * NH * HD), kPool: await t.readU32(kPool, poolBytes / 4), vPool: await t.readU32(vPool, poolBytes / 4) };
  for (const b of [q, k, v, kPool, vPool, pos, invFreq, sl]) t.buffers.release(b);
  return out;
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer.slice(0));

describe('rope_kv: RoPE of q and k fused with the KV write', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    for (const [slotBase, rotateQ] of [[0, true], [8, false]] as const) {
      it(`is bitwise rope + rope + kv_write (${dtype} pool, slotBase ${slotBase}, rotateQ ${rotateQ})`, async () => {
        const t = await testGpu();
        const fused = await run(t, dtype, true, slotBase, rotateQ);
        const separate = await run(t, dtype, false, slotBase, rotateQ);
        expect(bits(fused.q)).toEqual(bits(separate.q));
        expect(fused.kPool).toEqual(separate.kPool);
        expect(fused.vPool).toEqual(separate.vPool);
      });
    }
  }

  it('serves head sizes that are multiples of 4 and refuses others with InvalidRequestError', async () => {
    expect([64, 128, 16].every(ropeKvFits)).toBe(true);
    expect(ropeKvFits(6)).toBe(false);
    const t = await testGpu();
    const b = t.zeros(4096);
    const enc = t.device.createCommandEncoder();
    expect(() => encodeRopeKv(t, enc, { q: b, k: t.zeros(4096), v: t.zeros(4096), kPool: t.zeros(4096), vPool: t.zeros(4096), kvDtype: 'f32', positions: t.zeros(64), invFreq: t.zeros(64), slots: t.zeros(64), nTokens: 1, nHeads: 1, nKvHeads: 1, headDim: 6 }, [])).toThrow(InvalidRequestError);
  });
});
