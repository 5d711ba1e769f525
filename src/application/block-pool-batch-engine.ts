import { BlockPool, type BlockCopy, type BlockId, type PoolStats } from '../domain/block-pool.ts';
import { errorToPlain, InvalidRequestError, PoolExhaustedError, type PlainError } from '../domain/errors.ts';
import { PrefixIndex } from '../domain/prefix-index.ts';
import { scheduleStep, validatePolicy, type SchedulePolicy, type ScheduledWork } from '../domain/scheduler.ts';
import type { AgentBlocks, CompletedGeneration, FinishReason } from '../domain/values.ts';
import type { GenerationEnginePort, SubmitRequest, TokenDelta } from '../ports/inbound.ts';
import type { ModelBackendPort, SequenceStep, TokenizerPort } from '../ports/outbound.ts';
import { KvManager, type AgentEvictHook } from './engine/kv-manager.ts';
import { validateRequest } from './engine/requests.ts';
import { RequestBook, type RequestAccounting } from './engine/request-book.ts';
import { logitRows } from './engine/logit-rows.ts';
import { Sequence } from './engine/sequence.ts';
import { TextStream } from './engine/text-stream.ts';

export interface EngineOptions extends Partial<SchedulePolicy> {
  /** Max sequences running at once. */
  readonly maxRunning?: number;
  readonly onAgentEvict?: AgentEvictHook;
}

/** How a cache store plugs into the engine (all optional). */
export interface EngineCacheHooks {
  /** An idle agent's hot blocks are about to be dropped under pool pressure. */
  readonly onAgentEvict?: AgentEvictHook;
  /** Before a request is queued: bring the agent's cache to the hot tier if worthwhile. */
  readonly prepareAgent?: (agentId: string, promptIds: readonly number[]) => Promise<void>;
  /** A request finished and its context became the agent's hot cache. */
  readonly afterFinish?: (agentId: string, scratch: boolean) => void;
  /** A step computed `tokens` prefill tokens in `ms` (for the restore-or-recompute model). */
  readonly onPrefill?: (tokens: number, ms: number) => void;
  /** A running sequence is preempted: snapshot its computed KV (the read must start now). */
  readonly onPreempt?: (uid: string, blocks: AgentBlocks) => void;
  /**
   * Before a preempted sequence runs again: its restored blocks and how many tokens they hold;
   * 'wait' when the pool has no room yet (the snapshot is kept); null to recompute instead.
   */
  readonly resumePreempted?: (uid: string) => Promise<{ readonly table: BlockId[]; readonly tokens: number } | 'wait' | null>;
  /** A request ended; drop anything kept for it. */
  readonly forget?: (uid: string) => void;
}

export interface EngineStats {
  readonly pool: PoolStats;
  readonly running: number;
  readonly waiting: number;
  readonly cachedAgents: number;
  readonly indexedBlocks: number;
  readonly preemptions: number;
  /** Preempted sequences that came back from a snapshot instead of recomputing. */
  readonly resumedFromSnapshot: number;
  readonly steps: number;
}

export type { RequestAccounting } from './engine/request-book.ts';

/**
 * Continuous batching over a paged KV pool. Requests join between any two steps; a step mixes
 * one decode token per decoding sequence with prefill chunks under a token budget; finished
 * sequences leave at once and leave their context cached (prefix index + agent cache).
 * Pool pressure: evict cached blocks (LRU), then preempt the youngest running sequence, which
 * later recomputes its context; PoolExhaustedError only when one request alone cannot fit.
 */
export class BlockPoolBatchEngine implements GenerationEnginePort {
  readonly kv: KvManager;
  private readonly policy: SchedulePolicy;
  private readonly maxRunning: number;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly requests = new RequestBook();
  private readonly done: CompletedGeneration[] = [];
  private nextUid = 0;
  private preemptions = 0;
  private resumed = 0;
  private steps = 0;
  private admissions = 0;
  private loop: Promise<void> | null = null;
  private loopToken: object | null = null;
  /** The step in flight: steps run one after another, whoever calls them. */
  private stepping: Promise<unknown> = Promise.resolve();
  private hooks: EngineCacheHooks = {};

  constructor(
    private readonly backend: ModelBackendPort,
    private readonly tokenizer: TokenizerPort | null,
    options: EngineOptions = {},
  ) {
    this.policy = validatePolicy({ maxBatchTokens: options.maxBatchTokens ?? 256, maxPrefillChunk: options.maxPrefillChunk ?? 128 });
    this.maxRunning = options.maxRunning ?? 64;
    const spec = backend.extractModelSpec();
    const busy = (): ReadonlySet<string> => new Set(this.running.map((s) => s.agentId));
    this.kv = new KvManager(new BlockPool(backend.totalBlocks), new PrefixIndex(spec.fingerprint, spec.blockTokens), busy, options.onAgentEvict);
  }

  setCacheHooks(hooks: EngineCacheHooks): void {
    this.hooks = hooks;
    this.kv.setEvictHook(hooks.onAgentEvict);
  }

  async submit(request: SubmitRequest): Promise<string> {
    const v = validateRequest(request, this.tokenizer, this.backend.vocabSize, this.backend.maxContext);
    this.kv.assertFits(v.promptIds.length + v.limits.maxTokens);
    await this.hooks.prepareAgent?.(v.agentId, v.promptIds);
    const uid = `gen-${++this.nextUid}`;
    const decode = (ids: readonly number[]): string => this.tokenizer?.decode(ids, { skipSpecialTokens: true }) ?? '';
    const seq = new Sequence(uid, v.agentId, v.promptIds, v.sampling, v.limits, new TextStream(decode, v.limits.stop), Date.now(), v.logprobs, v.output);
    this.requests.add(seq);
    this.waiting.push(seq);
    return uid;
  }

  hasPendingWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0 || this.done.length > 0;
  }

  onToken(uid: string, listener: (delta: TokenDelta) => void): () => void {
    const seq = this.requests.get(uid);
    if (!seq) return () => undefined;
    seq.listeners.add(listener);
    return () => seq.listeners.delete(listener);
  }

  /**
   * Resolves when the request finishes (any reason), at once for one that finished recently;
   * rejects with InvalidRequestError for a uid the engine does not know (never hangs).
   */
  result(uid: string): Promise<CompletedGeneration> {
    return this.requests.result(uid);
  }

  accounting(uid: string): RequestAccounting | undefined {
    return this.requests.accounting(uid);
  }

  /** Requests the engine tracks (running or waiting): for leak checks. */
  trackedRequests(): number {
    return this.requests.size;
  }

  async cancel(uid: string): Promise<boolean> {
    const seq = this.requests.get(uid);
    if (!seq || seq.state === 'finished') return false;
    this.finish(seq, 'cancelled');
    return true;
  }

  /** Steps while there is work; a later submit restarts it. */
  run(): Promise<void> {
    if (this.loop) return this.loop;
    const token = {};
    this.loopToken = token;
    this.loop = (async () => {
      // Yield first, so the `finally` below can never run before `this.loop` is assigned.
      await Promise.resolve();
      try {
        while (this.hasPendingWork()) {
          try {
            await this.step();
          } catch (error) {
            // A step that failed outside the forward (a hook, a broken invariant): every request
            // it could have touched ends with the error instead of waiting forever.
            this.failAll(error);
          }
        }
      } finally {
        if (this.loopToken === token) this.loop = null;
      }
    })();
    return this.loop;
  }

  /** submit + run + wait: the one-call path the services use. */
  async generate(request: SubmitRequest, onToken?: (d: TokenDelta) => void): Promise<CompletedGeneration> {
    const uid = await this.submit(request);
    if (onToken) this.onToken(uid, onToken);
    const result = this.result(uid);
    void this.run();
    return result;
  }

  /**
   * One batched step. Steps never overlap: a caller stepping by hand (GenerationEnginePort)
   * while the run loop steps waits for the step in flight.
   */
  step(): Promise<CompletedGeneration[]> {
    const next = this.stepping.then(() => this.stepOnce());
    this.stepping = next.catch(() => undefined);
    return next;
  }

  private async stepOnce(): Promise<CompletedGeneration[]> {
    await this.resumePreempted();
    this.admit();
    const work = scheduleStep(this.running.map((s) => ({ id: s.uid, pendingPrefill: s.pending > 1 ? s.pending : 0 })), this.policy);
    const planned = this.reserve(work);
    if (planned.steps.length > 0) {
      // From here until the forward is submitted, a cancel or delete must not hand the planned
      // blocks to anyone else: blocks freed meanwhile wait behind the fence.
      this.kv.pool.fence();
      try {
        if (planned.copies.length > 0) await this.backend.copyBlocks(planned.copies);
        const prefill = planned.steps.reduce((n, p) => n + (p.step.tokenIds.length > 1 ? p.step.tokenIds.length : 0), 0);
        this.prefillTiming.tokens += prefill;
        if (prefill > 0 && this.prefillTiming.since === 0) this.prefillTiming.since = performance.now();
        // Logits come back only when a sampled sequence asked for logprobs: one row per sampled step.
        const returnLogits = planned.steps.some((p) => p.step.sample && p.seq.wantsLogits);
        const out = await this.backend.forward(planned.steps.map((p) => p.step), { returnLogits });
        this.observePrefill(planned.steps.some((p) => p.step.sample));
        const rows = logitRows(out.logits, planned.steps.map((p) => p.step.sample), this.backend.vocabSize);
        planned.steps.forEach((p, i) => this.advance(p.seq, p.step, out.nextTokens[i], rows[i]));
      } catch (error) {
        for (const p of planned.steps) this.finish(p.seq, 'error', errorToPlain(error));
      } finally {
        this.kv.pool.unfence();
      }
      this.steps++;
    }
    return this.done.splice(0);
  }

  stats(): EngineStats {
    return {
      pool: this.kv.pool.stats(),
      running: this.running.length,
      waiting: this.waiting.length,
      cachedAgents: this.kv.agentIds().length,
      indexedBlocks: this.kv.index.size,
      preemptions: this.preemptions,
      resumedFromSnapshot: this.resumed,
      steps: this.steps,
    };
  }

  /** End every running and waiting request with `error`. */
  failAll(error: unknown): void {
    const plain = errorToPlain(error);
    for (const s of [...this.running, ...this.waiting]) this.finish(s, 'error', plain);
  }

  /** Drop an agent's hot cache (cancelling its running requests). */
  dropAgent(agentId: string): boolean {
    for (const s of [...this.running, ...this.waiting]) if (s.agentId === agentId) this.finish(s, 'cancelled');
    return this.kv.dropAgent(agentId);
  }

  /** Cancel everything and drop every cached block: the pool returns to its starting state. */
  reset(): void {
    for (const s of [...this.running, ...this.waiting]) this.finish(s, 'cancelled');
    this.done.length = 0;
    this.kv.clear();
  }

  /**
   * A step that samples nothing returns before the GPU has run it, so prefill time is measured
   * from the first step that carried prefill to the next step that waited for a readback.
   */
  private readonly prefillTiming = { tokens: 0, since: 0 };

  private observePrefill(waitedForGpu: boolean): void {
    if (!waitedForGpu || this.prefillTiming.tokens === 0) return;
    this.hooks.onPrefill?.(this.prefillTiming.tokens, performance.now() - this.prefillTiming.since);
    this.prefillTiming.tokens = 0;
    this.prefillTiming.since = 0;
  }

  /**
   * Preempted sequences about to be admitted get their snapshot back when the store has one.
   * One that must wait for room holds the queue (first come, first served) while others run.
   */
  private async resumePreempted(): Promise<void> {
    this.admissionHeld = false;
    const resume = this.hooks.resumePreempted;
    if (!resume) return;
    const slots = this.maxRunning - this.running.length;
    for (const seq of this.waiting.slice(0, slots)) {
      if (!seq.preempted || seq.table.length > 0) continue;
      // A failed restore is not fatal: the request recomputes its context.
      const restored = await resume(seq.uid).catch(() => null);
      if (restored === 'wait' && this.running.length > 0) {
        this.admissionHeld = true;
        return;
      }
      if (!restored || restored === 'wait' || seq.state !== 'waiting') {
        if (restored && restored !== 'wait') this.kv.pool.releaseAll(restored.table);
        if (restored === 'wait') this.hooks.forget?.(seq.uid);
        continue;
      }
      seq.table = restored.table;
      seq.computed = restored.tokens;
      this.resumed++;
    }
  }

  private admissionHeld = false;

  private admit(): void {
    while (!this.admissionHeld && this.waiting.length > 0 && this.running.length < this.maxRunning) {
      const seq = this.waiting.shift() as Sequence;
      if (seq.table.length === 0) {
        const reuse = this.kv.acquirePrefix(seq.agentId, seq.tokens);
        seq.table = reuse.table;
        seq.computed = reuse.reused;
        if (seq.generated.length === 0) seq.prefillReused = reuse.reused;
      }
      seq.state = 'running';
      // First admission fixes the priority: a resumed sequence is not the youngest again, so the
      // same one is not pushed out step after step.
      if (seq.admittedAt < 0) seq.admittedAt = this.admissions++;
      this.running.push(seq);
    }
  }

  /** Blocks and copy-on-write for every scheduled item, preempting the youngest when needed. */
  private reserve(work: readonly ScheduledWork[]): { steps: Array<{ seq: Sequence; step: SequenceStep }>; copies: BlockCopy[] } {
    const steps: Array<{ seq: Sequence; step: SequenceStep }> = [];
    const copies: BlockCopy[] = [];
    for (const item of work) {
      const seq = this.requests.get(item.id);
      if (!seq || seq.state !== 'running') continue;
      const end = seq.computed + item.tokens;
      const cow = this.secure(seq, end, new Set(steps.map((p) => p.seq)));
      if (!cow) continue;
      copies.push(...cow);
      const tokens = seq.tokens;
      steps.push({
        seq,
        step: {
          tokenIds: tokens.slice(seq.computed, end),
          startPosition: seq.computed,
          blockTable: seq.table,
          sample: end === seq.length,
          sampling: seq.sampling,
          sampleStep: seq.generated.length,
          history: seq,
        },
      });
    }
    return { steps, copies };
  }

  /**
   * Make `seq` writable up to `end`. When the pool is full, preempt the youngest running sequence
   * not already planned in this step (possibly `seq` itself). A sequence that is alone and still
   * does not fit fails with PoolExhaustedError.
   */
  private secure(seq: Sequence, end: number, planned: ReadonlySet<Sequence>): BlockCopy[] | null {
    for (;;) {
      if (this.kv.ensureCapacity(seq.table, end)) {
        const cow = this.kv.prepareWrites(seq.table, seq.computed, end);
        if (cow) return cow;
      }
      const candidates = this.running.filter((s) => !planned.has(s));
      const victim = candidates.reduce<Sequence | null>((y, s) => (!y || s.admittedAt > y.admittedAt ? s : y), null);
      if (victim === seq && this.running.length === 1) {
        this.finish(seq, 'error', new PoolExhaustedError('the request does not fit in the KV pool even alone').toPlain());
        return null;
      }
      if (!victim) return null;
      this.preempt(victim);
      if (victim === seq) return null;
    }
  }

  private preempt(seq: Sequence): void {
    if (seq.computed > 0) {
      try {
        this.hooks.onPreempt?.(seq.uid, { agentId: seq.agentId, blockTable: [...seq.table], tokenIds: seq.tokens.slice(0, seq.computed) });
      } catch {
        // No snapshot: the request recomputes its context when it runs again.
        this.hooks.forget?.(seq.uid);
      }
    }
    seq.preempted = true;
    this.kv.pool.releaseAll(seq.table);
    seq.table = [];
    seq.computed = 0;
    seq.state = 'waiting';
    this.running.splice(this.running.indexOf(seq), 1);
    this.waiting.unshift(seq);
    this.preemptions++;
  }

  private advance(seq: Sequence, step: SequenceStep, token: number, logits: Float32Array | undefined): void {
    if (seq.state !== 'running') return;
    seq.computed += step.tokenIds.length;
    if (seq.generated.length === 0 && step.tokenIds.length > 0) seq.prefillComputed += step.tokenIds.length;
    if (!step.sample) return;
    if (token < 0) {
      this.finish(seq, 'error', new InvalidRequestError('backend returned no token').toPlain());
      return;
    }
    seq.generated.push(token);
    const logprob = logits && seq.recordLogprob(token, logits, (id) => this.tokenizer?.decode([id]) ?? '');
    if (logits && seq.output.keepLogits) seq.logitRows.push(logits.slice());
    const eos = !seq.output.ignoreEos && (this.tokenizer?.eosTokenIds().includes(token) ?? false);
    const update = seq.stream.update(seq.generated);
    let text = update.delta;
    let reason: FinishReason | null = null;
    if (update.stoppedText !== undefined) {
      seq.finalText = update.stoppedText;
      seq.stopSequence = update.stop ?? null;
      reason = 'stop';
    } else if (eos) reason = 'stop';
    else if (seq.generated.length >= seq.limits.maxTokens || seq.length >= this.backend.maxContext) reason = 'length';
    if (reason !== null && seq.finalText === null) {
      // The last token carries the text held back until the end: one delta per token.
      text += seq.stream.flush(seq.generated);
      seq.finalText = seq.stream.full(seq.generated);
    }
    seq.emit({ uid: seq.uid, tokenId: token, text, ...(logprob ? { logprob } : {}) });
    if (reason !== null) this.finish(seq, reason);
  }

  private finish(seq: Sequence, reason: FinishReason, error?: PlainError): void {
    if (seq.state === 'finished') return;
    const wasRunning = seq.state === 'running';
    seq.state = 'finished';
    seq.finishReason = reason;
    if (wasRunning) this.running.splice(this.running.indexOf(seq), 1);
    else this.waiting.splice(this.waiting.indexOf(seq), 1);
    // A completed context becomes the agent's cache; a cancelled or failed one is freed.
    const keep = wasRunning && seq.computed > 0 && (reason === 'stop' || reason === 'length');
    if (keep) this.kv.commit(seq.agentId, seq.tokens.slice(0, seq.computed), seq.table);
    else this.kv.pool.releaseAll(seq.table);
    if (keep) this.hooks.afterFinish?.(seq.agentId, seq.output.scratch);
    seq.table = [];
    this.hooks.forget?.(seq.uid);
    if (seq.finalText === null) {
      const tail = seq.stream.flush(seq.generated);
      if (tail && reason !== 'cancelled') seq.emit({ uid: seq.uid, tokenId: seq.generated[seq.generated.length - 1] ?? -1, text: tail });
      seq.finalText = seq.stream.full(seq.generated);
    }
    const result = seq.completed(reason, this.kv.agentBlocks(seq.agentId), error);
    this.done.push(result);
    this.requests.settle(seq, result);
    seq.listeners.clear();
  }
}
