import { LitElement, css, html } from 'lit';
import { SemanticClient, type GpuInfo, type LoadedModelInfo } from '../src/client/index.ts';
import './agent-panel.ts';

interface FixtureEntry {
  readonly id: string;
  readonly architecture: string;
  readonly dtype: string;
  readonly path: string;
}

const AGENTS = ['ROMEO', 'JULIET', 'MERCUTIO'];

/** The trained embedded model (public/models/shakespeare-llama): the offline default, first in the list. */
const EMBEDDED_DEFAULT: FixtureEntry = { id: 'shakespeare-llama', architecture: 'LlamaForCausalLM', dtype: 'F16', path: 'shakespeare-llama/' };

/**
 * The demo: a few Shakespeare speakers as agents on one embedded tiny model. Each agent's KV
 * memory lives on the GPU while it talks, moves to host memory and IndexedDB when evicted or
 * when the page goes away, and comes back after a reload without recomputing its context.
 */
class SemanticDemo extends LitElement {
  static override properties = {
    models: { state: true },
    status: { state: true },
    gpu: { state: true },
    ready: { state: true },
  };

  static override styles = css`
    .row { display: flex; gap: 0.5rem; align-items: center; margin: 0.5rem 0; }
  `;

  // Reactive properties are declared, not initialised as class fields: a field would shadow the
  // accessor Lit installs and updates would not render.
  declare models: FixtureEntry[];
  declare status: string;
  declare gpu: GpuInfo | null;
  declare ready: boolean;
  readonly client = new SemanticClient();
  private loaded: LoadedModelInfo | null = null;

  constructor() {
    super();
    this.models = [];
    this.status = 'starting worker…';
    this.gpu = null;
    this.ready = false;
  }

  override async connectedCallback(): Promise<void> {
    super.connectedCallback();
    const index = (await (await fetch('/models/index.json')).json()) as { models: FixtureEntry[] };
    this.models = [EMBEDDED_DEFAULT, ...index.models];
    this.gpu = await this.client.gpuInfo();
    await this.load(this.models[0]?.id ?? '');
  }

  private async load(id: string): Promise<void> {
    const entry = this.models.find((m) => m.id === id);
    if (!entry) return;
    this.ready = false;
    this.status = `loading ${id}…`;
    try {
      this.loaded = await this.client.loadModel({ id, source: `/models/${entry.path}` });
      const stored = await this.client.listStoredAgents();
      this.status = `ready: ${id} (${this.loaded.architecture}, ${this.loaded.nLayers} layers); ${stored.length} agent(s) in IndexedDB`;
      this.ready = true;
    } catch (e) {
      this.status = `${(e as Error).name}: ${(e as Error).message}`;
    }
  }

  override render(): unknown {
    return html`
      <h1>semantic</h1>
      <p>WebGPU: ${this.gpu ? (this.gpu.available ? `${this.gpu.vendor} ${this.gpu.architecture}` : 'not available') : '…'}</p>
      <div class="row">
        <label>Model
          <select @change=${(e: Event) => this.load((e.target as HTMLSelectElement).value)}>
            ${this.models.map((m) => html`<option value=${m.id}>${m.id} (${m.dtype})</option>`)}
          </select>
        </label>
        <button @click=${() => this.client.persistAll()}>Save all to IndexedDB</button>
        <span id="status">${this.status}</span>
      </div>
      ${this.ready ? AGENTS.map((a) => html`<agent-panel .client=${this.client} agentId=${a}></agent-panel>`) : ''}
    `;
  }
}

customElements.define('semantic-demo', SemanticDemo);
