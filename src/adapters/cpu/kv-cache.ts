import { InvalidRequestError } from '../../domain/errors.ts';

/**
 * A dense, growable KV cache for one sequence on the CPU reference backend. Per layer, K and V are
 * laid out [position, kvHead, headDim], position j holding the token at absolute position j: the
 * same per-token layout as one token row of a paged GPU block, so copying between them is a
 * straight row copy.
 */
export class CpuKvCache {
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  private keyStore: Float32Array[];
  private valueStore: Float32Array[];
  private capacity: number;
  private committed = 0;

  constructor(nLayers: number, nKvHeads: number, headDim: number, initialCapacity = 16) {
    this.nLayers = nLayers;
    this.nKvHeads = nKvHeads;
    this.headDim = headDim;
    this.capacity = Math.max(1, initialCapacity);
    const size = this.capacity * this.rowSize;
    this.keyStore = Array.from({ length: nLayers }, () => new Float32Array(size));
    this.valueStore = Array.from({ length: nLayers }, () => new Float32Array(size));
  }

  /** Elements per position per layer: nKvHeads * headDim. */
  get rowSize(): number {
    return this.nKvHeads * this.headDim;
  }

  /** Positions cached so far; the next token goes at this position. */
  get length(): number {
    return this.committed;
  }

  /** Keys of one layer; only the first `length` rows are meaningful. Re-read after a write. */
  keys(layer: number): Float32Array {
    return this.keyStore[this.layerIndex(layer)];
  }

  values(layer: number): Float32Array {
    return this.valueStore[this.layerIndex(layer)];
  }

  /** Grow (doubling) so that `positions` rows fit; existing rows are kept. */
  reserve(positions: number): void {
    if (positions <= this.capacity) return;
    let next = this.capacity;
    while (next < positions) next *= 2;
    const grow = (old: Float32Array): Float32Array => {
      const fresh = new Float32Array(next * this.rowSize);
      fresh.set(old);
      return fresh;
    };
    this.keyStore = this.keyStore.map(grow);
    this.valueStore = this.valueStore.map(grow);
    this.capacity = next;
  }

  /**
   * Write rows of K and V ([n, nKvHeads, headDim]) for `layer` starting at `position`. Rows past
   * `length` stay invisible until `advance`, so a forward pass that fails midway leaves the
   * cache as it was.
   */
  write(layer: number, position: number, k: Float32Array, v: Float32Array): void {
    const i = this.layerIndex(layer);
    if (k.length !== v.length || k.length % this.rowSize !== 0) {
      throw new InvalidRequestError('K and V must both be [n, nKvHeads, headDim]', { k: k.length, v: v.length });
    }
    if (position !== this.committed) {
      throw new InvalidRequestError(`cache writes must append at position ${this.committed}`, { position });
    }
    this.reserve(position + k.length / this.rowSize);
    this.keyStore[i].set(k, position * this.rowSize);
    this.valueStore[i].set(v, position * this.rowSize);
  }

  /** Make `n` more written positions visible. */
  advance(n: number): void {
    const next = this.committed + n;
    if (!Number.isInteger(n) || n < 0 || next > this.capacity) {
      throw new InvalidRequestError('advance past written positions', { n, length: this.committed });
    }
    this.committed = next;
  }

  /** Forget everything from `length` on (e.g. to re-run a suffix). */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.committed) {
      throw new InvalidRequestError('truncate length out of range', { length, current: this.committed });
    }
    this.committed = length;
  }

  /** A deep copy of the committed rows, independent of this cache. */
  clone(): CpuKvCache {
    const copy = new CpuKvCache(this.nLayers, this.nKvHeads, this.headDim, Math.max(1, this.committed));
    const used = this.committed * this.rowSize;
    for (let l = 0; l < this.nLayers; l++) {
      copy.keyStore[l].set(this.keyStore[l].subarray(0, used));
      copy.valueStore[l].set(this.valueStore[l].subarray(0, used));
    }
    copy.committed = this.committed;
    return copy;
  }

  private layerIndex(layer: number): number {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new InvalidRequestError(`layer ${layer} out of range`, { layer, nLayers: this.nLayers });
    }
    return layer;
  }
}
