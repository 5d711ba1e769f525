import { LitElement, css, html } from 'lit';
import { SemanticClient, type GpuInfo, type LoadedModelInfo } from '../src/client/index.ts';

interface FixtureEntry {
  readonly id: string;
  readonly architecture: string;
  readonly dtype: string;
  readonly path: string;
}

/**
 * Minimal demo: picks one of the embedded tiny models, loads it in the runtime's Web Worker, and
 * streams a greedy continuation. The full multi-agent demo grows from here.
 */
class SemanticDemo extends LitElement {
  static override properties = {
    models: { state: true },
    status: { state: true },
    output: { state: true },
    gpu: { state: true },
  };

  static override styles = css`
    textarea { width: 100%; min-height: 4rem; }
    pre { white-space: pre-wrap; background: #f4f4f4; padding: 0.75rem; min-height: 3rem; }
    .row { display: flex; gap: 0.5rem; align-items: center; margin: 0.5rem 0; }
  `;

  models: FixtureEntry[] = [];
  status = 'starting worker…';
  output = '';
  gpu: GpuInfo | null = null;
  private readonly client = new SemanticClient();
  private loaded: LoadedModelInfo | null = null;

  override async connectedCallback(): Promise<void> {
    super.connectedCallback();
    const index = (await (await fetch('/models/index.json')).json()) as { models: FixtureEntry[] };
    this.models = index.models;
    this.gpu = await this.client.gpuInfo();
    await this.load(this.models[0]?.id ?? '');
  }

  private async load(id: string): Promise<void> {
    const entry = this.models.find((m) => m.id === id);
    if (!entry) return;
    this.status = `loading ${id}…`;
    try {
      this.loaded = await this.client.loadModel({ id, source: `/models/${entry.path}` });
      this.status = `ready: ${id} (${this.loaded.architecture}, ${this.loaded.nLayers} layers, vocab ${this.loaded.vocabSize})`;
    } catch (e) {
      this.status = `${(e as Error).name}: ${(e as Error).message}`;
    }
  }

  private async generate(): Promise<void> {
    const prompt = this.renderRoot.querySelector('textarea')?.value ?? '';
    this.output = '';
    try {
      const reply = await this.client.generate({ text: prompt }, 48, (_id, text) => {
        this.output += text;
      });
      this.status = `done: ${reply.tokenIds.length} tokens in ${reply.elapsedMs.toFixed(0)} ms (${reply.finishReason})`;
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
      </div>
      <textarea>ROMEO:
But soft, what light</textarea>
      <div class="row"><button id="generate" @click=${() => this.generate()}>Generate</button> <span id="status">${this.status}</span></div>
      <pre id="output">${this.output}</pre>
    `;
  }
}

customElements.define('semantic-demo', SemanticDemo);
