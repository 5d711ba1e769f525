import { html, css } from 'lit';
import { CHARACTERS } from './characters.ts';
import { SessionElement, base } from './session-element.ts';

/**
 * The agents: a list to switch between them (with who is writing right now), delete buttons,
 * and the form that creates one from a name and a system prompt or a ready-made character.
 */
export class AgentList extends SessionElement {
  static override properties = { ...SessionElement.properties, selected: { type: String } };
  declare selected: string;

  static override styles = [
    base,
    css`
      ul { list-style: none; margin: 0 0 0.75rem; padding: 0; display: grid; gap: 0.35rem; }
      li { display: flex; gap: 0.3rem; align-items: stretch; }
      .pick { flex: 1; text-align: left; display: grid; gap: 0.1rem; min-width: 0; }
      .pick[aria-current='true'] { border-color: #1d4ed8; background: #e8efff; }
      .name { font-weight: 600; }
      .preview { color: #5b6579; font-size: 0.8rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
      .writing { color: #1d4ed8; font-size: 0.8rem; }
      form { display: grid; gap: 0.4rem; }
      label { display: grid; gap: 0.15rem; font-size: 0.85rem; }
      textarea { resize: vertical; min-height: 3.2rem; }
    `,
  ];

  constructor() {
    super();
    this.selected = '';
  }

  private pick(id: string): void {
    this.dispatchEvent(new CustomEvent('select-agent', { detail: id, bubbles: true, composed: true }));
  }

  private create(e: SubmitEvent): void {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const data = new FormData(form);
    const name = String(data.get('name') ?? '').trim();
    if (!name || !this.session) return;
    const record = this.session.createAgent(name, String(data.get('system') ?? ''));
    form.reset();
    if (record) this.pick(record.id);
  }

  private character(e: Event): void {
    const c = CHARACTERS.find((x) => x.name === (e.target as HTMLSelectElement).value);
    const form = (e.target as HTMLElement).closest('form');
    if (!c || !form) return;
    (form.elements.namedItem('name') as HTMLInputElement).value = c.name;
    (form.elements.namedItem('system') as HTMLTextAreaElement).value = c.system;
  }

  override render(): unknown {
    const s = this.session;
    const ready = s?.phase.kind === 'ready';
    return html`
      <h2 id="agents-h">Agents</h2>
      <ul aria-labelledby="agents-h">
        ${(s?.agents ?? []).map((a) => {
          const writing = s?.streaming.has(a.id) === true;
          const last = a.lines.at(-1);
          return html`<li data-agent=${a.id} data-writing=${writing}>
            <button class="pick" aria-current=${a.id === this.selected ? 'true' : 'false'} @click=${() => this.pick(a.id)}>
              <span class="name">${a.name}</span>
              ${writing ? html`<span class="writing">writing…</span>` : html`<span class="preview">${last ? `${last.speaker}: ${last.content}` : 'no messages yet'}</span>`}
            </button>
            <button aria-label=${`Delete ${a.name}`} title="Delete this agent and its memory" @click=${() => s?.deleteAgent(a.id)}>✕</button>
          </li>`;
        })}
      </ul>
      <form @submit=${(e: SubmitEvent) => this.create(e)}>
        <label>Character
          <select name="character" @change=${(e: Event) => this.character(e)}>
            <option value="">Custom</option>
            ${CHARACTERS.map((c) => html`<option value=${c.name}>${c.name}</option>`)}
          </select>
        </label>
        <label>Name <input name="name" required maxlength="40" autocomplete="off" /></label>
        <label>System prompt <textarea name="system" rows="2"></textarea></label>
        <button class="primary" type="submit" ?disabled=${!ready}>New agent</button>
      </form>
    `;
  }
}

customElements.define('agent-list', AgentList);
