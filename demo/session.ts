import { createEngine, type EngineOptions, type InspectSnapshot, type LocalEngine, type OpenAiMessage } from '../src/client/index.ts';
import type { CatalogEntry } from './catalog.ts';
import { RateMeter, sourceOf, streamChat, type RequestMetric } from './chat-request.ts';
import { chatMessages } from './conversation.ts';
import { describeError, type Notice } from './notices.ts';
import { agentIdFor, loadAgents, saveAgents, type AgentRecord, type ChatLine } from './saved-state.ts';

/** One download progress event of createEngine. */
export type LoadProgress = Parameters<NonNullable<EngineOptions['onProgress']>>[0];

export type Phase =
  | { readonly kind: 'checking' }
  | { readonly kind: 'no-webgpu'; readonly reason: string }
  | { readonly kind: 'loading'; readonly model: CatalogEntry; readonly progress: LoadProgress | null }
  | { readonly kind: 'ready' }
  | { readonly kind: 'failed'; readonly notice: Notice };

export interface StorageInfo {
  readonly usage: number;
  readonly quota: number;
  readonly persisted: boolean;
}

/** Requests the inspector lists (newest last). */
const REQUESTS_KEPT = 12;

/**
 * The demo's state and everything it does with the engine, apart from the UI. Components read
 * its fields and re-render on its 'change' event. Only the public client API is used.
 */
export class DemoSession extends EventTarget {
  phase: Phase = { kind: 'checking' };
  engine: LocalEngine | null = null;
  model: CatalogEntry | null = null;
  agents: AgentRecord[] = [];
  /** Reply text arriving, per agent. */
  readonly streaming = new Map<string, string>();
  readonly requests: RequestMetric[] = [];
  readonly rate = new RateMeter();
  snapshot: InspectSnapshot | null = null;
  storage: StorageInfo | null = null;
  notices: Notice[] = [];
  maxTokens = 32;
  private seq = 0;
  private refreshing = false;
  /** System prompts being prefilled, by agent. */
  private readonly prefills = new Map<string, Promise<unknown>>();

  changed(): void {
    this.dispatchEvent(new Event('change'));
  }

  /** Load a model in a fresh worker (stopping the old one, which saves its agents first). */
  async start(model: CatalogEntry): Promise<void> {
    const reason = await webGpuMissing();
    if (reason) return this.set({ kind: 'no-webgpu', reason });
    const old = this.engine;
    this.engine = null;
    this.streaming.clear();
    await old?.close();
    this.model = model;
    this.set({ kind: 'loading', model, progress: null });
    try {
      this.engine = await createEngine({
        model: { id: model.id, source: model.source },
        onProgress: (p) => this.set({ kind: 'loading', model, progress: p }),
        // Started here so that bundlers see the worker (Vite bundles `new Worker(new URL(...))`).
        worker: new Worker(new URL('../worker/runtime.worker.ts', import.meta.url), { type: 'module', name: 'semantic' }),
      });
    } catch (e) {
      return this.set({ kind: 'failed', notice: describeError(e) });
    }
    this.agents = loadAgents(model.id);
    this.set({ kind: 'ready' });
    await this.refresh();
  }

  /** Take a fresh snapshot of the runtime's memory and of storage. */
  async refresh(): Promise<void> {
    const engine = this.engine;
    if (!engine || this.refreshing) return;
    this.refreshing = true;
    try {
      this.snapshot = await engine.client.inspect();
      this.storage = await storageInfo();
      this.noteStorageTrouble();
    } catch (e) {
      this.notify(describeError(e));
    } finally {
      this.refreshing = false;
    }
    this.changed();
  }

  /**
   * Add an agent at once; its system prompt is prefilled in the background, so its blocks are
   * cached (and shared with agents of the same opening) before its first turn, which waits for it.
   */
  createAgent(name: string, system: string): AgentRecord | null {
    const engine = this.engine;
    if (!engine || !this.model) return null;
    const id = agentIdFor(name, new Set(this.agents.map((a) => a.id)));
    const record: AgentRecord = { id, name: name.trim() || id, system: system.trim(), lines: [] };
    this.agents = [...this.agents, record];
    this.persist();
    this.changed();
    if (record.system) {
      const prefill = engine.agents
        .create({ agent_id: id, system: record.system })
        .then(() => this.refresh())
        .catch((e: unknown) => this.notify(describeError(e)))
        .finally(() => this.prefills.delete(id));
      this.prefills.set(id, prefill);
    }
    return record;
  }

  async deleteAgent(id: string): Promise<void> {
    this.agents = this.agents.filter((a) => a.id !== id);
    this.persist();
    await this.engine?.agents.delete(id).catch((e: unknown) => this.notify(describeError(e)));
    await this.refresh();
  }

  /** One chat turn: the user's line, then the agent's streamed reply. */
  async send(id: string, text: string): Promise<void> {
    const agent = this.agents.find((a) => a.id === id);
    if (!agent || !text.trim() || this.streaming.has(id)) return;
    const lines = [...agent.lines, { role: 'user' as const, speaker: 'You', content: text.trim() }];
    this.update(id, { lines });
    const reply = await this.turn(id, chatMessages(agent.system, lines));
    if (reply !== null) this.update(id, { lines: [...lines, { role: 'assistant', speaker: agent.name, content: reply }] });
  }

  /** Stream one agent turn, recording it for the inspector; null when it failed. */
  async turn(agentId: string, messages: readonly OpenAiMessage[]): Promise<string | null> {
    const engine = this.engine;
    if (!engine) return null;
    const metric: RequestMetric = { seq: ++this.seq, agentId, startedAt: performance.now(), firstTokenAt: null, endedAt: null, promptTokens: 0, skippedTokens: 0, completionTokens: 0, source: null, chunks: 0, error: null };
    this.requests.push(metric);
    if (this.requests.length > REQUESTS_KEPT) this.requests.shift();
    this.streaming.set(agentId, '');
    this.changed();
    try {
      await this.prefills.get(agentId);
      const onText = (delta: string): void => {
        this.rate.tick();
        this.streaming.set(agentId, (this.streaming.get(agentId) ?? '') + delta);
        this.changed();
      };
      const text = await streamChat({ engine, agentId, messages, maxTokens: this.maxTokens, metric, onText });
      this.snapshot = await engine.client.inspect();
      metric.source = sourceOf(this.snapshot, agentId, metric.skippedTokens);
      return text.trim() || '…';
    } catch (e) {
      metric.error = describeError(e).title;
      metric.endedAt = performance.now();
      this.notify(describeError(e));
      return null;
    } finally {
      this.streaming.delete(agentId);
      await this.refresh();
    }
  }

  async evict(id: string): Promise<void> {
    const engine = this.engine;
    if (!engine) return;
    // hot -> warm -> cold: evict until the memory is only in IndexedDB.
    for (let i = 0; i < 3; i++) {
      const tier = await engine.client.evictAgent(id).catch((e: unknown) => (this.notify(describeError(e)), null));
      if (tier === null || tier === 'cold') break;
    }
    await this.refresh();
  }

  async exportMemory(id: string): Promise<Uint8Array | null> {
    return (await this.engine?.client.exportAgent(id).catch((e: unknown) => (this.notify(describeError(e)), null))) ?? null;
  }

  async importMemory(id: string, bytes: Uint8Array): Promise<boolean> {
    try {
      await this.engine?.client.importAgent(bytes, id);
      return true;
    } catch (e) {
      this.notify(describeError(e));
      return false;
    } finally {
      await this.refresh();
    }
  }

  /** Simulate a driver reset: the runtime reloads the model on a new device and restores agents. */
  async loseDevice(): Promise<void> {
    const engine = this.engine;
    if (!engine) return;
    const before = await engine.client.debugLoseDevice();
    this.notify({ kind: 'device-lost', title: 'GPU device lost', detail: 'The runtime is loading the model on a new device; agents come back from host memory and IndexedDB.' });
    const after = await engine.client.deviceRecoveries();
    if (after > before) this.notify({ kind: 'device-recovered', title: 'GPU device recovered', detail: `Recovered ${after} time(s). Agents resume from their warm and cold memory.` });
    await this.refresh();
  }

  dismiss(notice: Notice): void {
    this.notices = this.notices.filter((n) => n !== notice);
    this.changed();
  }

  notify(notice: Notice): void {
    if (this.notices.some((n) => n.kind === notice.kind && n.detail === notice.detail)) return;
    this.notices = [...this.notices.filter((n) => !(notice.kind === 'device-recovered' && n.kind === 'device-lost')), notice];
    this.changed();
  }

  private noteStorageTrouble(): void {
    const unsaved = this.snapshot?.agents.filter((a) => a.unsaved) ?? [];
    if (unsaved.length > 0) {
      this.notify({
        kind: 'quota',
        title: 'Storage is full',
        detail: `${unsaved.map((a) => a.agentId).join(', ')}: memory kept in this tab only (${unsaved[0].unsaved?.name}). Delete agents, or free space for this site, and it is saved again.`,
      });
    }
    for (const a of this.snapshot?.agents ?? []) if (a.lastRestore?.refused) this.notify(describeError(a.lastRestore.refused));
  }

  update(id: string, change: Partial<Pick<AgentRecord, 'lines' | 'system'>>): void {
    this.agents = this.agents.map((a) => (a.id === id ? { ...a, ...change } : a));
    this.persist();
    this.changed();
  }

  private persist(): void {
    if (this.model) saveAgents(this.model.id, this.agents);
  }

  private set(phase: Phase): void {
    this.phase = phase;
    this.changed();
  }
}

export type { ChatLine };

/** Why this browser cannot run the engine, or null when it can. */
async function webGpuMissing(): Promise<string | null> {
  if (!('gpu' in navigator)) return 'This browser has no WebGPU (navigator.gpu is missing).';
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  return adapter ? null : 'WebGPU is present but no GPU adapter is available.';
}

async function storageInfo(): Promise<StorageInfo | null> {
  const storage = navigator.storage;
  if (!storage?.estimate) return null;
  const { usage = 0, quota = 0 } = await storage.estimate();
  return { usage, quota, persisted: storage.persisted ? await storage.persisted() : false };
}
