import { html, css, nothing } from 'lit';
import { CATALOG, cachedHubModels, formatBytes, type CatalogEntry } from './catalog.ts';
import { SessionElement, base } from './session-element.ts';

/**
 * The model picker: the embedded trained model (default, works offline), the tiny fixtures,
 * and hub models with their sizes; those whose files are in the Cache API are marked cached.
 * Loading shows a progress bar over the weight files.
 */
export class ModelPicker extends SessionElement {
  static override properties = { ...SessionElement.properties, cached: { state: true } };
  declare cached: ReadonlySet<string>;

  static override styles = [
    base,
    css`
      :host { display: flex; flex-wrap: wrap; gap: 0.4rem 0.75rem; align-items: center; min-width: 0; max-width: 100%; }
      label { display: flex; gap: 0.35rem; align-items: center; font-size: 0.9rem; min-width: 0; max-width: 100%; }
      select { min-width: 0; max-width: min(24rem, 100%); flex: 1 1 auto; }
      progress { width: 10rem; }
      .progress { display: flex; gap: 0.4rem; align-items: center; font-size: 0.8rem; }
    `,
  ];

  constructor() {
    super();
    this.cached = new Set();
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void cachedHubModels().then((c) => (this.cached = c)).catch(() => undefined);
  }

  private describe(m: CatalogEntry): string {
    const size = `${m.approximate ? '≈' : ''}${formatBytes(m.bytes)}`;
    const where = m.kind === 'hub' ? (this.cached.has(m.id) ? 'cached' : 'download') : m.kind === 'embedded' ? 'built in, offline' : 'test fixture';
    return `${m.label}: ${size}, ${where}`;
  }

  private async choose(e: Event): Promise<void> {
    const entry = CATALOG.find((m) => m.id === (e.target as HTMLSelectElement).value);
    if (!entry || !this.session) return;
    await this.session.start(entry);
    this.cached = await cachedHubModels().catch(() => this.cached);
  }

  override render(): unknown {
    const s = this.session;
    const phase = s?.phase;
    const loading = phase?.kind === 'loading' ? phase : null;
    const p = loading?.progress;
    const done = p ? (p.overallLoadedBytes ?? p.loadedBytes) : 0;
    const total = p ? (p.overallTotalBytes ?? p.totalBytes) : 0;
    const groups: Array<[string, CatalogEntry['kind'][]]> = [['In this app', ['embedded', 'fixture']], ['Hugging Face hub (downloaded once, then cached)', ['hub']]];
    return html`
      <label>Model
        <select @change=${(e: Event) => this.choose(e)} ?disabled=${loading !== null}>
          ${groups.map(([label, kinds]) => html`<optgroup label=${label}>
            ${CATALOG.filter((m) => kinds.includes(m.kind)).map((m) => html`<option value=${m.id} ?selected=${m.id === s?.model?.id}>${this.describe(m)}</option>`)}
          </optgroup>`)}
        </select>
      </label>
      ${loading
        ? html`<span class="progress" role="status">
            <progress aria-label="Download progress" max=${total || 1} value=${done}></progress>
            ${p ? `${p.file}: ${formatBytes(done)} of ${formatBytes(total)}` : `starting ${loading.model.label}…`}
          </span>`
        : nothing}
      ${phase?.kind === 'ready' && s?.engine ? html`<span class="muted" id="model-status">ready: ${s.engine.model.id} (${s.engine.model.architecture}, ${s.engine.model.nLayers} layers)</span>` : nothing}
    `;
  }
}

customElements.define('model-picker', ModelPicker);
