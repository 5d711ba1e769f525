import { describe, expect, it } from 'vitest';
import { CpuReferenceModel } from '../src/adapters/cpu/cpu-model.ts';
import {
  addInPlace,
  applyRope,
  argmax,
  attention,
  embeddingGather,
  kvHeadFor,
  linear,
  rmsNorm,
  silu,
  softmax,
  swiglu,
} from '../src/adapters/cpu/ops.ts';
import { InvalidRequestError } from '../src/domain/errors.ts';
import { parseModelConfig } from '../src/domain/model-config.ts';
import { ropeInvFreq } from '../src/domain/rope.ts';

/** Every expected value in this file was worked out by hand; the comments show the arithmetic. */
function expectClose(actual: ArrayLike<number>, expected: readonly number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((want, i) => expect(actual[i]).toBeCloseTo(want, digits));
}

const f32 = (...values: number[]) => Float32Array.from(values);

describe('embeddingGather', () => {
  const table = f32(1, 2, 3, 4, 5, 6); // [3 tokens, hidden 2]
  it('copies the row of each token id', () => {
    expect(Array.from(embeddingGather(table, 2, [2, 0, 2]))).toEqual([5, 6, 1, 2, 5, 6]);
  });
  it('refuses ids outside the vocabulary', () => {
    expect(() => embeddingGather(table, 2, [3])).toThrow(InvalidRequestError);
    expect(() => embeddingGather(table, 2, [-1])).toThrow(InvalidRequestError);
  });
});

describe('rmsNorm', () => {
  it('[3, 4] with weight [1, 2], eps 0: mean(x²) = 12.5 → [3/√12.5, 8/√12.5]', () => {
    expectClose(rmsNorm(f32(3, 4), f32(1, 2), 0), [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)]);
    expectClose(rmsNorm(f32(3, 4), f32(1, 2), 0), [0.8485281, 2.2627417]);
  });

  it('puts eps inside the square root: [1, 1], eps 3 → 1/√(1 + 3) = 0.5, not 1/(√1 + 3) = 0.25', () => {
    expectClose(rmsNorm(f32(1, 1), f32(1, 1), 3), [0.5, 0.5]);
  });

  it('normalizes each row on its own', () => {
    // Row 2: [0, 2] → mean(x²) = 2 → [0, 2/√2].
    expectClose(rmsNorm(f32(3, 4, 0, 2), f32(1, 1), 0), [0.8485281, 1.1313708, 0, Math.SQRT2]);
  });

  it('maps a zero row to zeros when eps > 0', () => {
    expect(Array.from(rmsNorm(f32(0, 0), f32(1, 1), 1e-6))).toEqual([0, 0]);
  });

  it('refuses input that is not a whole number of rows', () => {
    expect(() => rmsNorm(f32(1, 2, 3), f32(1, 1), 0)).toThrow(InvalidRequestError);
  });
});

describe('applyRope (rotate_half)', () => {
  const invFreq = ropeInvFreq(4, 10000, { type: 'default' }); // [1, 0.01]

  it('headDim 4 at position 1 rotates pairs (0, 2) by 1 rad and (1, 3) by 0.01 rad', () => {
    const x = f32(1, 2, 3, 4);
    applyRope(x, { nTokens: 1, nHeads: 1, headDim: 4 }, [1], invFreq);
    const [c1, s1, c01, s01] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
    expectClose(x, [
      1 * c1 - 3 * s1, // out0 = x0 cos1 − x2 sin1
      2 * c01 - 4 * s01, // out1 = x1 cos0.01 − x3 sin0.01
      3 * c1 + 1 * s1, // out2 = x2 cos1 + x0 sin1
      4 * c01 + 2 * s01, // out3 = x3 cos0.01 + x1 sin0.01
    ]);
    // The same numbers written out: cos1 = 0.5403023, sin1 = 0.8414710.
    expectClose(x, [-1.9841107, 1.9599007, 2.4623779, 4.0197997], 5);
  });

  it('leaves position 0 unchanged and rotates every head of a token alike', () => {
    const x = f32(1, 2, 3, 4, 1, 2, 3, 4, /* token 1 */ 1, 0, 0, 0, 1, 0, 0, 0);
    applyRope(x, { nTokens: 2, nHeads: 2, headDim: 4 }, [0, 2], invFreq);
    expectClose(x.subarray(0, 8), [1, 2, 3, 4, 1, 2, 3, 4]);
    // [1, 0, 0, 0] at position 2: pair (0, 2) by 2 rad → [cos2, 0, sin2, 0], in both heads.
    const rotated = [Math.cos(2), 0, Math.sin(2), 0];
    expectClose(x.subarray(8, 12), rotated);
    expectClose(x.subarray(12, 16), rotated);
  });

  it('refuses mismatched shapes', () => {
    expect(() => applyRope(f32(1, 2, 3), { nTokens: 1, nHeads: 1, headDim: 4 }, [0], invFreq)).toThrow(
      InvalidRequestError,
    );
    expect(() => applyRope(f32(1, 2, 3, 4), { nTokens: 1, nHeads: 1, headDim: 4 }, [0, 1], invFreq)).toThrow(
      InvalidRequestError,
    );
  });
});

describe('linear', () => {
  // W is HF [out 3, in 2]: rows [1, 0], [0, 1], [1, 1].
  const w = f32(1, 0, 0, 1, 1, 1);
  it('computes x W^T: [1, 2] → [1, 2, 3] and [−1, 5] → [−1, 5, 4]', () => {
    expect(Array.from(linear(f32(1, 2, -1, 5), w, 3))).toEqual([1, 2, 3, -1, 5, 4]);
  });
  it('adds the bias per output', () => {
    expect(Array.from(linear(f32(1, 2), w, 3, f32(10, 20, 30)))).toEqual([11, 22, 33]);
  });
  it('refuses an input width that does not match the weight', () => {
    expect(() => linear(f32(1, 2, 3), w, 3)).toThrow(InvalidRequestError);
    expect(() => linear(f32(1, 2), w, 3, f32(1))).toThrow(InvalidRequestError);
  });
});

describe('silu, swiglu, residual', () => {
  it('silu(x) = x/(1 + e^−x): 0 → 0, 1 → 0.7310586, −1 → −0.2689414', () => {
    expectClose(silu(f32(0, 1, -1)), [0, 0.7310586, -0.2689414]);
  });
  it('swiglu = silu(gate) · up: (1, 2) → 1.4621172, (0, 5) → 0', () => {
    expectClose(swiglu(f32(1, 0), f32(2, 5)), [1.4621172, 0]);
  });
  it('addInPlace adds b into a', () => {
    const a = f32(1, 2);
    addInPlace(a, f32(10, 20));
    expect(Array.from(a)).toEqual([11, 22]);
  });
});

describe('softmax and argmax', () => {
  it('softmax of [0, ln2, ln3] is [1/6, 2/6, 3/6]', () => {
    expectClose(softmax(f32(0, Math.LN2, Math.log(3))), [1 / 6, 2 / 6, 3 / 6]);
  });
  it('is stable for large logits and works per row', () => {
    expectClose(softmax(f32(1000, 1000, 0, -1000), 2), [0.5, 0.5, 1, 0]);
  });
  it('argmax returns the lowest index of a tie', () => {
    expect(argmax(f32(1, 3, 3, 2))).toBe(1);
  });
});

describe('attention (causal GQA)', () => {
  it('maps 4 query heads onto 2 kv heads as [0, 0, 1, 1]', () => {
    expect([0, 1, 2, 3].map((h) => kvHeadFor(h, 4, 2))).toEqual([0, 0, 1, 1]);
    expect([0, 1, 2, 3, 4, 5].map((h) => kvHeadFor(h, 6, 2))).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it('with one key, each query head outputs the value of its own kv head', () => {
    // headDim 2; kv head 0 has v = [1, 2], kv head 1 has v = [3, 4]; queries are arbitrary.
    const out = attention({
      q: f32(5, -1, 0.3, 7, -2, 2, 9, 9),
      positions: [0],
      k: f32(1, 1, -1, 0.5),
      v: f32(1, 2, 3, 4),
      kvLength: 1,
      nHeads: 4,
      nKvHeads: 2,
      headDim: 2,
    });
    expectClose(out, [1, 2, 1, 2, 3, 4, 3, 4]);
  });

  it('weights two keys by softmax(q·k/√headDim)', () => {
    // k0 = [0, 0], k1 = [1, 0]. Head 0: q = [√2·ln3, 0] → scores [0, ln3] → weights [1/4, 3/4]
    // → 1/4·[4, 0] + 3/4·[0, 8] = [1, 6]. Head 1: q = 0 → equal weights → [2, 4].
    const out = attention({
      q: f32(Math.SQRT2 * Math.log(3), 0, 0, 0),
      positions: [1],
      k: f32(0, 0, 1, 0),
      v: f32(4, 0, 0, 8),
      kvLength: 2,
      nHeads: 2,
      nKvHeads: 1,
      headDim: 2,
    });
    expectClose(out, [1, 6, 2, 4], 5);
  });

  it('masks keys after the query position', () => {
    // Query at position 0 sees only key 0, however strongly it matches key 1.
    const out = attention({
      q: f32(0, 100, /* token at position 1 */ 0, 0),
      positions: [0, 1],
      k: f32(0, 0, 0, 1),
      v: f32(4, 0, 0, 8),
      kvLength: 2,
      nHeads: 1,
      nKvHeads: 1,
      headDim: 2,
    });
    expectClose(out, [4, 0, 2, 4]);
  });

  it('refuses a query whose position has no cached key', () => {
    const input = { q: f32(1, 1), positions: [2], k: f32(0, 0, 0, 0), v: f32(0, 0, 0, 0), kvLength: 2 };
    expect(() => attention({ ...input, nHeads: 1, nKvHeads: 1, headDim: 2 })).toThrow(InvalidRequestError);
  });
});

describe('a 1-layer toy model computed on paper', () => {
  // vocab 3, hidden 2, one head of dim 2, intermediate 1, norm weights 1, eps ≈ 0.
  // q and k projections are zero, so every score is 0 and attention averages the values.
  const config = parseModelConfig({
    model_type: 'llama',
    vocab_size: 3,
    hidden_size: 2,
    intermediate_size: 1,
    num_hidden_layers: 1,
    num_attention_heads: 1,
    num_key_value_heads: 1,
    rms_norm_eps: 1e-12,
    tie_word_embeddings: false,
  });
  const p = 'model.layers.0.';
  const weights = new Map<string, Float32Array>([
    ['model.embed_tokens.weight', f32(3, 4, 1, 0, 0, 2)],
    [`${p}input_layernorm.weight`, f32(1, 1)],
    [`${p}self_attn.q_proj.weight`, f32(0, 0, 0, 0)],
    [`${p}self_attn.k_proj.weight`, f32(0, 0, 0, 0)],
    [`${p}self_attn.v_proj.weight`, f32(1, 0, 0, 1)],
    [`${p}self_attn.o_proj.weight`, f32(0.5, 0, 0, 0.5)],
    [`${p}post_attention_layernorm.weight`, f32(1, 1)],
    [`${p}mlp.gate_proj.weight`, f32(1, 0)],
    [`${p}mlp.up_proj.weight`, f32(0, 1)],
    [`${p}mlp.down_proj.weight`, f32(1, 0)],
    ['model.norm.weight', f32(1, 1)],
    ['lm_head.weight', f32(1, 0, 0, 1, 1, -1)],
  ]);

  it('gives the hand-computed logits for [0] and then [0, 1]', () => {
    // Token 0: e = [3, 4], rms = √12.5, x = [0.848528, 1.131371]; v = x, attention over one key = v,
    // o = x/2, h1 = [3.424264, 4.565685]. rmsNorm(h1) = x again (h1 ∝ [3, 4]). gate = 0.848528,
    // up = 1.131371, silu(gate)·up = 0.594198·1.131371 = 0.672248 → h2 = [4.096512, 4.565685].
    // rms(h2) = 4.337474 → n = [0.944452, 1.052620] → logits [n0, n1, n0 − n1].
    // Token 1 at position 1: e = [1, 0], x = [√2, 0]; attention averages v0 and v1 →
    // [1.131371, 0.565685], o = [0.565685, 0.282843], h1 = [1.565685, 0.282843];
    // rmsNorm(h1) = [1.391687, 0.251410], silu(1.391687)·0.251410 = 0.280208 →
    // h2 = [1.845894, 0.282843] → n = [1.397898, 0.214197].
    const model = new CpuReferenceModel(config, weights);
    const cache = model.createCache();
    expectClose(model.forward([0], cache), [0.944452, 1.05262, -0.108168], 5);
    expectClose(model.forward([1], cache), [1.397898, 0.214197, 1.183701], 5);
    expectClose(
      model.forward([0, 1], model.createCache()),
      [0.944452, 1.05262, -0.108168, 1.397898, 0.214197, 1.183701],
      5,
    );
  });

  it('names a missing or mis-sized tensor', () => {
    const missing = new Map(weights);
    missing.delete('lm_head.weight');
    expect(() => new CpuReferenceModel(config, missing)).toThrow(/lm_head\.weight/);
    const wrong = new Map(weights).set(`${p}mlp.up_proj.weight`, f32(1, 2, 3));
    expect(() => new CpuReferenceModel(config, wrong)).toThrow(InvalidRequestError);
    expect(() => new CpuReferenceModel(config, wrong)).toThrow(/mlp\.up_proj\.weight/);
  });
});
