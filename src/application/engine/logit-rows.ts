/**
 * The backend returns logits only for the sampled steps, one row each, in step order. This maps
 * them back to the steps: a row for each sampled step, undefined for the others (or when no
 * logits came back).
 */
export function logitRows(logits: Float32Array | undefined, sampled: readonly boolean[], vocab: number): Array<Float32Array | undefined> {
  let row = 0;
  return sampled.map((s) => {
    if (!s || !logits) return undefined;
    const at = row++ * vocab;
    return at + vocab <= logits.length ? logits.subarray(at, at + vocab) : undefined;
  });
}
