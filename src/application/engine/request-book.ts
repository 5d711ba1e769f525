import { InvalidRequestError } from '../../domain/errors.ts';
import type { CompletedGeneration } from '../../domain/values.ts';
import type { Sequence } from './sequence.ts';

export interface RequestAccounting {
  readonly prefillComputed: number;
  readonly prefillReused: number;
}

/** Finished requests whose result and accounting stay queryable. */
const RECENT_RESULTS = 1024;

/**
 * The engine's requests by uid: live ones, and a bounded memory of finished ones so a late
 * `result` or `accounting` call still answers. Nothing grows without bound, and `result` never
 * hangs: a uid the book does not know is a typed error.
 */
export class RequestBook {
  private readonly live = new Map<string, Sequence>();
  private readonly recent = new Map<string, { result: CompletedGeneration; accounting: RequestAccounting }>();
  private readonly waiters = new Map<string, Array<(g: CompletedGeneration) => void>>();

  add(seq: Sequence): void {
    this.live.set(seq.uid, seq);
  }

  get(uid: string): Sequence | undefined {
    return this.live.get(uid);
  }

  get size(): number {
    return this.live.size;
  }

  result(uid: string): Promise<CompletedGeneration> {
    const done = this.recent.get(uid);
    if (done) return Promise.resolve(done.result);
    if (!this.live.has(uid)) return Promise.reject(new InvalidRequestError(`unknown request ${uid}`, { reason: 'unknown-request', uid }));
    return new Promise((resolve) => {
      const list = this.waiters.get(uid) ?? [];
      list.push(resolve);
      this.waiters.set(uid, list);
    });
  }

  accounting(uid: string): RequestAccounting | undefined {
    const s = this.live.get(uid);
    return s ? { prefillComputed: s.prefillComputed, prefillReused: s.prefillReused } : this.recent.get(uid)?.accounting;
  }

  /** The request ended: it leaves the live map, its waiters get the result. */
  settle(seq: Sequence, result: CompletedGeneration): void {
    this.live.delete(seq.uid);
    this.recent.set(seq.uid, { result, accounting: { prefillComputed: seq.prefillComputed, prefillReused: seq.prefillReused } });
    if (this.recent.size > RECENT_RESULTS) this.recent.delete(this.recent.keys().next().value as string);
    for (const w of this.waiters.get(seq.uid) ?? []) w(result);
    this.waiters.delete(seq.uid);
  }
}
