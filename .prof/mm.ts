import { testGpu, randomF32 } from '/work/wt-shapes/test/gpu/harness.ts';
import { encodeMatmulWith } from '/work/wt-shapes/src/adapters/webgpu/ops/matmul.ts';
import { encodeSample, packSampleParams } from '/work/wt-shapes/src/adapters/webgpu/ops/sampling.ts';
export async function main(args: string[]): Promise<number> {
  const t = await testGpu();
  const [N, K] = [Number(args[0]), Number(args[1])];
  const w = { buffer: t.upload(randomF32(N * K, 1)), dtype: 'f32' as const, shape: [N, K] };
  const x = t.upload(randomF32(K * 4, 2));
  const out = t.zeros(N * 4 * 4);
  for (const M of [1, 1, 4]) {
    const s = performance.now();
    await t.run((enc, tr) => encodeMatmulWith(t, enc, { x, w, out, M, N, K }, tr, 'vec'));
    console.log(`matmul vec M=${M} N=${N} K=${K}: ${(performance.now() - s).toFixed(0)} ms`);
  }
  const params = t.upload(new Uint32Array(packSampleParams([{ temperature: 0, topK: 0, topP: 1, seed: 0, step: 0 } as never])));
  const tok = t.zeros(16);
  for (let i = 0; i < 2; i++) {
    const s = performance.now();
    await t.run((enc, tr) => encodeSample(t, enc, { logits: out, params, out: tok, nSeqs: 1, vocab: N }, tr));
    console.log(`sample vocab=${N}: ${(performance.now() - s).toFixed(0)} ms`);
  }
  return 0;
}
