import { html, css, nothing } from 'lit';
import { SessionElement, base } from './session-element.ts';

/**
 * One agent's conversation: the transcript with the reply streaming in, the message box, and
 * the agent's memory actions (evict to cold storage, export and import a .safetensors file).
 */
export class ChatPane extends SessionElement {
  static override properties = { ...SessionElement.properties, agentId: { type: String }, status: { state: true } };
  declare agentId: string;
  declare status: string;

  static override styles = [
    base,
    css`
      :host { display: flex; flex-direction: column; min-height: 0; }
      header { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin-bottom: 0.5rem; }
      header h2 { margin: 0; flex: 1 1 8rem; }
      .tier { font-size: 0.75rem; padding: 0.1rem 0.45rem; border-radius: 999px; background: #e6ebf4; }
      .tier[data-tier='hot'] { background: #fde2d3; } .tier[data-tier='warm'] { background: #fdf1c7; } .tier[data-tier='cold'] { background: #d7e8fb; }
      ol { list-style: none; margin: 0; padding: 0.5rem; display: grid; gap: 0.5rem; align-content: start; overflow-y: auto; min-height: 10rem; max-height: 55vh; background: #f8fafc; border: 1px solid #e2e7f0; border-radius: 8px; }
      li { max-width: 90%; padding: 0.4rem 0.6rem; border-radius: 8px; white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.35; }
      li.user { justify-self: end; background: #1d4ed8; color: #fff; }
      li.assistant { justify-self: start; background: #fff; border: 1px solid #d5dbe6; font-family: Georgia, 'Times New Roman', serif; }
      li[aria-busy='true']::after { content: '▍'; color: #1d4ed8; }
      .who { display: block; font: 600 0.75rem system-ui, sans-serif; opacity: 0.75; margin-bottom: 0.1rem; }
      form { display: flex; gap: 0.4rem; margin-top: 0.5rem; align-items: stretch; }
      textarea { flex: 1; resize: none; height: 2.6rem; }
      .actions { display: flex; flex-wrap: wrap; gap: 0.35rem; align-items: center; }
      .file { position: relative; overflow: hidden; display: inline-block; }
      .file input { position: absolute; inset: 0; opacity: 0; cursor: pointer; }
      .file:focus-within { outline: 3px solid #f59e0b; border-radius: 6px; }
    `,
  ];

  constructor() {
    super();
    this.agentId = '';
    this.status = '';
  }

  private get agent() {
    return this.session?.agents.find((a) => a.id === this.agentId);
  }

  private async send(e?: Event): Promise<void> {
    e?.preventDefault();
    const box = this.renderRoot.querySelector<HTMLTextAreaElement>('textarea');
    if (!box || !this.session || !box.value.trim()) return;
    const text = box.value;
    box.value = '';
    await this.session.send(this.agentId, text);
  }

  private key(e: KeyboardEvent): void {
    if (e.key === 'Enter' && !e.shiftKey) void this.send(e);
  }

  private async exportMemory(): Promise<void> {
    const bytes = await this.session?.exportMemory(this.agentId);
    if (!bytes) {
      this.status = 'Nothing to export yet: the agent has no memory.';
      return;
    }
    const url = URL.createObjectURL(new Blob([bytes.slice().buffer], { type: 'application/octet-stream' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: `${this.agentId}.safetensors` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    this.status = `Exported ${bytes.byteLength.toLocaleString()} bytes.`;
  }

  private async importMemory(e: Event): Promise<void> {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    input.value = '';
    if (!file || !this.session) return;
    const ok = await this.session.importMemory(this.agentId, new Uint8Array(await file.arrayBuffer()));
    this.status = ok ? `Imported ${file.name}.` : `${file.name} was refused.`;
  }

  override render(): unknown {
    const agent = this.agent;
    if (!agent) return html`<p class="muted">Create an agent to start: pick a character or give it a name and a system prompt.</p>`;
    const s = this.session;
    const tier = s?.snapshot?.agents.find((a) => a.agentId === agent.id)?.tier ?? 'none';
    const streaming = s?.streaming.get(agent.id);
    const metric = s?.requests.filter((r) => r.agentId === agent.id).at(-1);
    return html`
      <header>
        <h2>${agent.name}</h2>
        <span class="tier" data-tier=${tier} title="Where this agent's KV memory is now">memory: ${tier}</span>
        <div class="actions">
          <button @click=${() => s?.evict(agent.id)} title="Move this agent's memory off the GPU into IndexedDB">Evict to cold</button>
          <button @click=${() => this.exportMemory()}>Export .safetensors</button>
          <span class="file"><button tabindex="-1" aria-hidden="true">Import…</button><input type="file" accept=".safetensors" aria-label="Import memory (.safetensors)" @change=${(e: Event) => this.importMemory(e)} /></span>
        </div>
      </header>
      ${agent.system ? html`<p class="muted">System: ${agent.system}</p>` : nothing}
      <ol aria-label=${`Conversation with ${agent.name}`} aria-live="polite">
        ${agent.lines.map((l) => html`<li class=${l.role}><span class="who">${l.speaker}</span>${l.content}</li>`)}
        ${streaming !== undefined
          ? html`<li class="assistant reply" aria-busy="true" data-chunks=${metric?.chunks ?? 0}><span class="who">${agent.name}</span>${streaming}</li>`
          : nothing}
      </ol>
      <form @submit=${(e: Event) => this.send(e)}>
        <textarea aria-label="Message" placeholder="Say something… (Enter sends)" @keydown=${(e: KeyboardEvent) => this.key(e)}></textarea>
        <button class="primary" type="submit" ?disabled=${streaming !== undefined || s?.phase.kind !== 'ready'}>Send</button>
      </form>
      <p class="muted" aria-live="polite">${this.status}${metric && metric.endedAt !== null && !metric.error ? html` Last reply: ${metric.completionTokens} tokens, ${metric.skippedTokens} of ${metric.promptTokens} prompt tokens from memory (${metric.source}).` : nothing}</p>
    `;
  }
}

customElements.define('chat-pane', ChatPane);
