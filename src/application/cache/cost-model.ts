/**
 * Restore or recompute? Both rates are measured as the runtime works (exponential moving
 * averages), starting from conservative priors, so a warm start is never chosen when the
 * measurements say recomputing would be faster.
 */
export interface CostEstimate {
  readonly restoreMs: number;
  readonly recomputeMs: number;
  readonly restore: boolean;
}

export class RestoreCostModel {
  /** Prefill throughput, tokens per millisecond. */
  private prefillRate: number;
  /** Restore throughput (read + decode + upload), bytes per millisecond. */
  private restoreRate: number;
  private readonly alpha = 0.3;

  constructor(priors: { prefillTokensPerSecond?: number; restoreMegabytesPerSecond?: number } = {}) {
    this.prefillRate = (priors.prefillTokensPerSecond ?? 2000) / 1000;
    this.restoreRate = ((priors.restoreMegabytesPerSecond ?? 50) * 1024 * 1024) / 1000;
  }

  observePrefill(tokens: number, ms: number): void {
    if (tokens > 0 && ms > 0) this.prefillRate = this.mix(this.prefillRate, tokens / ms);
  }

  observeRestore(bytes: number, ms: number): void {
    if (bytes > 0 && ms > 0) this.restoreRate = this.mix(this.restoreRate, bytes / ms);
  }

  estimate(tokens: number, bytes: number): CostEstimate {
    const restoreMs = bytes / this.restoreRate;
    const recomputeMs = tokens / this.prefillRate;
    return { restoreMs, recomputeMs, restore: restoreMs < recomputeMs };
  }

  rates(): { prefillTokensPerSecond: number; restoreMegabytesPerSecond: number } {
    return { prefillTokensPerSecond: this.prefillRate * 1000, restoreMegabytesPerSecond: (this.restoreRate * 1000) / (1024 * 1024) };
  }

  private mix(old: number, sample: number): number {
    return old * (1 - this.alpha) + sample * this.alpha;
  }
}
