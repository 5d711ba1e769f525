import type { BlockCopy, BlockId } from '../../src/domain/block-pool.ts';
import type { ForwardResult, KvSnapshot, ModelBackendPort, SequenceStep } from '../../src/ports/outbound.ts';

/** The real backend, with a gate that can hold the next forward before it reaches the GPU. */
export class GatedBackend implements ModelBackendPort {
  private gate: { reached: () => void; open: Promise<void> } | null = null;
  constructor(private readonly inner: ModelBackendPort) {}
  get vocabSize(): number {
    return this.inner.vocabSize;
  }
  get maxContext(): number {
    return this.inner.maxContext;
  }
  get totalBlocks(): number {
    return this.inner.totalBlocks;
  }
  extractModelSpec(): ReturnType<ModelBackendPort['extractModelSpec']> {
    return this.inner.extractModelSpec();
  }
  /** Hold the next forward; resolves `reached` when it is held, and lets it go on `release()`. */
  holdNext(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const open = new Promise<void>((r) => (release = r));
    this.gate = { reached, open };
    return { reached: reachedP, release };
  }
  async forward(steps: readonly SequenceStep[], options?: { readonly returnLogits?: boolean }): Promise<ForwardResult> {
    const gate = this.gate;
    this.gate = null;
    if (gate) {
      gate.reached();
      await gate.open;
    }
    return this.inner.forward(steps, options);
  }
  copyBlocks(copies: readonly BlockCopy[]): Promise<void> {
    return this.inner.copyBlocks(copies);
  }
  /** Set to make every snapshot read fail (a lost device, a broken mapping). */
  failReads: Error | null = null;
  readBlocks(table: readonly BlockId[], tokens: number): Promise<KvSnapshot> {
    if (this.failReads) return Promise.reject(this.failReads);
    return this.inner.readBlocks(table, tokens);
  }
  writeBlocks(table: readonly BlockId[], snapshot: KvSnapshot): Promise<void> {
    return this.inner.writeBlocks(table, snapshot);
  }
  dispose(): void {}
}

