import { InvalidRequestError } from './errors.ts';
import type { RopeScaling } from './model-config.ts';

/**
 * Rotary position embedding tables, HF Llama convention: frequency i rotates the pair
 * (i, i + headDim/2) ("rotate_half"), not adjacent pairs. Values are rounded to f32 at the same
 * points HF rounds them (inv_freq is an f32 tensor; position * inv_freq is an f32 product), so the
 * CPU oracle and the f32 GPU kernels agree with transformers to rounding.
 */

function llama3Adjust(invFreq: Float32Array, scaling: Extract<RopeScaling, { type: 'llama3' }>): void {
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldLen } = scaling;
  const lowFreqWavelen = oldLen / lowFreqFactor;
  const highFreqWavelen = oldLen / highFreqFactor;
  for (let i = 0; i < invFreq.length; i++) {
    const f = invFreq[i];
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) continue; // high frequencies: unchanged
    if (wavelen > lowFreqWavelen) {
      invFreq[i] = f / factor; // low frequencies: fully scaled
      continue;
    }
    const smooth = (oldLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    invFreq[i] = (1 - smooth) * (f / factor) + smooth * f;
  }
}

/** inv_freq[i] = 1 / theta^(2i / headDim), i < headDim/2, then the scaling's adjustment. */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling): Float32Array {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new InvalidRequestError('RoPE headDim must be a positive even integer', { headDim });
  }
  if (!(theta > 0) || !Number.isFinite(theta)) {
    throw new InvalidRequestError('RoPE theta must be a positive finite number', { theta });
  }
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) invFreq[i] = invFreq[i] / scaling.factor;
  } else if (scaling.type === 'llama3') {
    llama3Adjust(invFreq, scaling);
  } else if (scaling.type === 'factors') {
    if (scaling.factors.length !== half || !scaling.factors.every((f) => f > 0 && Number.isFinite(f))) {
      throw new InvalidRequestError(`RoPE needs ${half} positive frequency factors`, { got: scaling.factors.length });
    }
    for (let i = 0; i < half; i++) invFreq[i] = invFreq[i] / scaling.factors[i];
  }
  return invFreq;
}

export interface RopeCosSin {
  /** cos(position * invFreq[i]), length headDim/2; HF's table repeats it for the second half. */
  readonly cos: Float32Array;
  readonly sin: Float32Array;
}

/** The rotation for one position. */
export function ropeCosSin(invFreq: Float32Array, position: number): RopeCosSin {
  if (!Number.isInteger(position) || position < 0) {
    throw new InvalidRequestError('RoPE position must be a non-negative integer', { position });
  }
  const cos = new Float32Array(invFreq.length);
  const sin = new Float32Array(invFreq.length);
  for (let i = 0; i < invFreq.length; i++) {
    const angle = Math.fround(position * invFreq[i]);
    cos[i] = Math.cos(angle);
    sin[i] = Math.sin(angle);
  }
  return { cos, sin };
}
