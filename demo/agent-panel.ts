import { LitElement, css, html } from 'lit';
import type { AgentReply, SemanticClient } from '../src/client/index.ts';

/**
 * One agent: a running transcript (its context), a prompt box, and its memory controls.
 * Each turn sends the whole transcript; the runtime reuses whatever of it the agent's cache
 * holds (GPU, host memory or IndexedDB), so only the new text is computed.
 */
export class AgentPanel extends LitElement {
  static override properties = {
    agentId: { type: String },
    client: { attribute: false },
    transcript: { state: true },
    status: { state: true },
    tier: { state: true },
  };

  static override styles = css`
    :host { display: block; border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 0.75rem; margin: 0.5rem 0; }
    pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.5rem; max-height: 12rem; overflow: auto; }
    .row { display: flex; gap: 0.4rem; align-items: center; flex-wrap: wrap; }
    input[type='text'] { flex: 1; min-width: 12rem; }
    .meta { color: #555; font-size: 0.85em; }
  `;

  declare agentId: string;
  declare client: SemanticClient | null;
  declare transcript: string;
  declare status: string;
  declare tier: string;

  constructor() {
    super();
    this.agentId = '';
    this.client = null;
    this.transcript = '';
    this.status = '';
    this.tier = 'none';
  }

  override async connectedCallback(): Promise<void> {
    super.connectedCallback();
    this.transcript = `${this.agentId}:\n`;
    await this.refreshTier();
  }

  private async refreshTier(): Promise<void> {
    if (this.client) this.tier = await this.client.agentTier(this.agentId);
  }

  private async send(): Promise<void> {
    const input = this.renderRoot.querySelector<HTMLInputElement>('input[type=text]');
    if (!this.client || !input) return;
    this.transcript += `${input.value}\n`;
    input.value = '';
    try {
      const reply: AgentReply = await this.client.agentGenerate(this.agentId, { text: this.transcript }, 32, (_id, text) => {
        this.transcript += text;
      });
      this.transcript = `${this.transcript.trimEnd()}\n`;
      this.status = `${reply.finishReason}; cache: ${reply.restoredFrom}, ${reply.cachedPromptTokens}/${reply.promptTokens} prompt tokens reused; TTFT ${reply.ttftMs.toFixed(0)} ms`;
    } catch (e) {
      this.status = `${(e as Error).name}: ${(e as Error).message}`;
    }
    await this.refreshTier();
  }

  private async evict(): Promise<void> {
    await this.client?.evictAgent(this.agentId);
    await this.refreshTier();
  }

  private async exportMemory(): Promise<void> {
    const bytes = await this.client?.exportAgent(this.agentId);
    if (!bytes) {
      this.status = 'nothing cached yet';
      return;
    }
    const url = URL.createObjectURL(new Blob([bytes.slice().buffer], { type: 'application/octet-stream' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: `${this.agentId}.safetensors` });
    a.click();
    URL.revokeObjectURL(url);
  }

  private async importMemory(event: Event): Promise<void> {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (!file || !this.client) return;
    try {
      await this.client.importAgent(new Uint8Array(await file.arrayBuffer()), this.agentId);
      this.status = `imported ${file.name}`;
    } catch (e) {
      this.status = `${(e as Error).name}: ${(e as Error).message}`;
    }
    await this.refreshTier();
  }

  override render(): unknown {
    return html`
      <div class="row"><strong>${this.agentId}</strong> <span class="meta">memory: ${this.tier}</span></div>
      <pre>${this.transcript}</pre>
      <div class="row">
        <input type="text" placeholder="say something…" @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.send()} />
        <button @click=${() => this.send()}>Send</button>
        <button @click=${() => this.evict()} title="move this agent's memory one tier down">Evict</button>
        <button @click=${() => this.exportMemory()}>Export</button>
        <label>Import <input type="file" accept=".safetensors" @change=${(e: Event) => this.importMemory(e)} /></label>
      </div>
      <div class="meta">${this.status}</div>
    `;
  }
}

customElements.define('agent-panel', AgentPanel);
