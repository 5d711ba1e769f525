import { html, css, nothing } from 'lit';
import { DEFAULT_MODEL } from './catalog.ts';
import { NO_WEBGPU_HELP, type Notice } from './notices.ts';
import { DemoSession } from './session.ts';
import { SessionElement, base } from './session-element.ts';
import './agent-list.ts';
import './chat-pane.ts';
import './inspector-panel.ts';
import './model-picker.ts';
import './notices.ts';
import './scene-view.ts';

const SELECTED = 'semantic-demo:selected';

/**
 * The demo: agents that remember (chat panes that stream, several at once), a scene of
 * characters, and the cache inspector beside them. Starts on the embedded trained model.
 */
export class SemanticDemo extends SessionElement {
  static override properties = { ...SessionElement.properties, view: { state: true }, inspector: { state: true }, selected: { state: true } };
  declare view: 'agents' | 'scene';
  declare inspector: boolean;
  declare selected: string;
  private timer: ReturnType<typeof setInterval> | undefined;

  static override styles = [
    base,
    css`
      :host { max-width: 1400px; margin: 0 auto; padding: 0.75rem 1rem 2rem; box-sizing: border-box; }
      header { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; margin-bottom: 0.75rem; }
      h1 { font-size: 1.3rem; margin: 0; }
      .tag { color: #5b6579; font-size: 0.85rem; flex: 1 1 14rem; }
      header > * { min-width: 0; max-width: 100%; }
      nav { display: flex; gap: 0.35rem; margin-bottom: 0.75rem; }
      nav button[aria-pressed='true'] { background: #1b2333; color: #fff; border-color: #1b2333; }
      .layout > * { min-width: 0; }
      .layout { display: grid; gap: 0.75rem; grid-template-columns: 14rem minmax(0, 1fr); align-items: start; }
      .layout.with-inspector { grid-template-columns: 14rem minmax(0, 1fr) minmax(0, 29rem); }
      .layout.scene { grid-template-columns: minmax(0, 1fr); }
      .layout.scene.with-inspector { grid-template-columns: minmax(0, 1fr) minmax(0, 29rem); }
      @media (max-width: 900px) {
        :host { padding: 0.5rem; }
        .layout, .layout.with-inspector, .layout.scene, .layout.scene.with-inspector { grid-template-columns: minmax(0, 1fr); }
      }
      .help li { margin: 0.25rem 0; }
      .tokens { display: flex; gap: 0.35rem; align-items: center; font-size: 0.9rem; }
      .tokens input { width: 4.5rem; }
    `,
  ];

  constructor() {
    super();
    this.session = new DemoSession();
    this.view = 'agents';
    this.inspector = true;
    this.selected = localStorage.getItem(SELECTED) ?? '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.session?.start(DEFAULT_MODEL);
    // Decode speed is sampled once a second; the inspector re-reads the pool as often.
    this.timer = setInterval(() => {
      const s = this.session;
      if (!s) return;
      s.rate.sample();
      if (this.inspector || s.streaming.size > 0) void s.refresh();
      else s.changed();
    }, 1000);
    this.addEventListener('select-agent', (e) => this.select((e as CustomEvent<string>).detail));
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearInterval(this.timer);
  }

  private setMaxTokens(e: Event): void {
    const n = Number((e.target as HTMLInputElement).value);
    if (this.session && Number.isInteger(n) && n >= 1 && n <= 256) this.session.maxTokens = n;
  }

  private select(id: string): void {
    this.selected = id;
    localStorage.setItem(SELECTED, id);
  }

  private main(): unknown {
    const s = this.session;
    if (!s) return nothing;
    if (s.phase.kind === 'no-webgpu') {
      return html`<section class="card help" role="alert"><h2>This browser cannot run the models: no WebGPU</h2><p>${s.phase.reason}</p><ul>${NO_WEBGPU_HELP.map((h) => html`<li>${h}</li>`)}</ul></section>`;
    }
    const current = s.agents.some((a) => a.id === this.selected) ? this.selected : (s.agents[0]?.id ?? '');
    const cls = `layout ${this.view === 'scene' ? 'scene' : ''} ${this.inspector ? 'with-inspector' : ''}`;
    return html`<div class=${cls}>
      ${this.view === 'agents'
        ? html`<agent-list class="card" .session=${s} selected=${current}></agent-list><chat-pane class="card" .session=${s} agentId=${current}></chat-pane>`
        : html`<scene-view class="card" .session=${s}></scene-view>`}
      ${this.inspector ? html`<inspector-panel id="inspector" class="card" .session=${s}></inspector-panel>` : nothing}
    </div>`;
  }

  override render(): unknown {
    const s = this.session;
    const tab = (view: 'agents' | 'scene', label: string): unknown => html`<button aria-pressed=${this.view === view ? 'true' : 'false'} @click=${() => (this.view = view)}>${label}</button>`;
    return html`
      <header>
        <h1>semantic</h1>
        <span class="tag">Agents whose memory lives below the prompt: on the GPU, in host memory, in IndexedDB.</span>
        <model-picker .session=${s}></model-picker>
        <label class="tokens">Reply tokens
          <input type="number" min="1" max="256" .value=${String(s?.maxTokens ?? 32)} @change=${(e: Event) => this.setMaxTokens(e)} />
        </label>
        <button aria-pressed=${this.inspector ? 'true' : 'false'} aria-controls="inspector" @click=${() => (this.inspector = !this.inspector)}>Inspector</button>
      </header>
      <notice-list .notices=${s?.phase.kind === 'failed' ? [s.phase.notice, ...s.notices] : (s?.notices ?? [])} @dismiss=${(e: CustomEvent<Notice>) => s?.dismiss(e.detail)}></notice-list>
      <nav aria-label="Views">${tab('agents', 'Agents')}${tab('scene', 'Scene')}</nav>
      ${this.main()}
    `;
  }
}

customElements.define('semantic-demo', SemanticDemo);
