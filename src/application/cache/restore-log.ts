import type { PlainError } from '../../domain/errors.ts';
import type { CacheTier, KvSnapshot } from '../../ports/outbound.ts';
import type { CostEstimate } from './cost-model.ts';

/** What a restore decided, for reports and tests. */
export interface RestoreReport {
  readonly agentId: string;
  readonly tier: CacheTier | 'none';
  readonly matchedTokens: number;
  readonly estimate?: CostEstimate;
  readonly refused?: PlainError;
}

/** Reports kept (in order, and the latest per agent): bounded so a long session does not grow. */
const REPORTS_KEPT = 256;

/** The latest restore decisions, in order and by agent. */
export class RestoreLog {
  /** Oldest first, at most REPORTS_KEPT. */
  readonly reports: RestoreReport[] = [];
  private readonly byAgent = new Map<string, RestoreReport>();

  record(report: RestoreReport): RestoreReport {
    this.reports.push(report);
    if (this.reports.length > REPORTS_KEPT) this.reports.shift();
    this.byAgent.delete(report.agentId);
    this.byAgent.set(report.agentId, report);
    if (this.byAgent.size > REPORTS_KEPT) this.byAgent.delete(this.byAgent.keys().next().value as string);
    return report;
  }

  last(agentId: string): RestoreReport | undefined {
    return this.byAgent.get(agentId);
  }
}

/** The first `tokens` tokens of a snapshot (views, no copy). */
export function truncateSnapshot(s: KvSnapshot, tokens: number): KvSnapshot {
  if (tokens === s.tokens) return s;
  const per = s.keys[0].length / s.tokens;
  return { tokens, keys: s.keys.map((k) => k.subarray(0, tokens * per)), values: s.values.map((v) => v.subarray(0, tokens * per)) };
}
