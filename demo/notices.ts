import { LitElement, css, html } from 'lit';

/** A state the page explains: what happened and what to do. */
export interface Notice {
  readonly kind: 'no-webgpu' | 'device-lost' | 'device-recovered' | 'quota' | 'refused' | 'error';
  readonly title: string;
  readonly detail: string;
}

/** The runtime's typed errors (they keep name and code across the worker) as notices. */
export function describeError(e: unknown): Notice {
  const name = typeof e === 'object' && e !== null && 'name' in e ? String((e as { name: unknown }).name) : 'Error';
  const raw = typeof e === 'object' && e !== null && 'message' in e ? String((e as { message: unknown }).message) : String(e);
  // Advice follows the runtime's message: end it as a sentence.
  const message = /[.!?]$/.test(raw.trim()) ? raw.trim() : `${raw.trim()}.`;
  switch (name) {
    case 'DeviceLostError':
      return { kind: 'device-lost', title: 'GPU device lost', detail: `${message} The runtime reloads the model on a new device; send again in a moment.` };
    case 'QuotaExceededError':
      return { kind: 'quota', title: 'Storage is full', detail: `${message} Delete agents, or free space for this site.` };
    case 'ModelMismatchError':
      return { kind: 'refused', title: 'Memory refused: made by another model', detail: `${message} Load the model it was made with, or start this agent fresh.` };
    case 'CacheCorruptError':
      return { kind: 'refused', title: 'Memory refused: the file is damaged', detail: message };
    default:
      return { kind: 'error', title: name, detail: message };
  }
}

/** What to do without WebGPU, by browser. */
export const NO_WEBGPU_HELP = [
  'Use a current Chrome or Edge (113 or later) on Windows, macOS or ChromeOS, or Safari 26.',
  'On Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu (and Vulkan drivers).',
  'Firefox: WebGPU is on in Firefox 141+ on Windows; elsewhere set dom.webgpu.enabled in about:config.',
  'Check chrome://gpu: "WebGPU: Hardware accelerated" should be listed.',
];

/** The list of notices, each dismissable; announced to screen readers as they appear. */
export class NoticeList extends LitElement {
  static override properties = { notices: { attribute: false } };
  declare notices: readonly Notice[];

  static override styles = css`
    :host { display: block; }
    .n { display: flex; gap: 0.5rem; align-items: flex-start; border-radius: 6px; padding: 0.5rem 0.75rem; margin: 0 0 0.5rem; background: #fff4e5; border: 1px solid #f0b45a; }
    .n[data-kind='device-recovered'] { background: #e8f7ee; border-color: #6cc38f; }
    .n[data-kind='refused'], .n[data-kind='error'] { background: #fdecec; border-color: #e58c8c; }
    .text { flex: 1; min-width: 0; overflow-wrap: anywhere; }
    button { font: inherit; }
  `;

  constructor() {
    super();
    this.notices = [];
  }

  override render(): unknown {
    return html`<div role="status" aria-live="polite">
      ${this.notices.map(
        (n) => html`<div class="n" data-kind=${n.kind}>
          <div class="text"><strong>${n.title}.</strong> ${n.detail}</div>
          <button aria-label=${`Dismiss: ${n.title}`} @click=${() => this.dispatchEvent(new CustomEvent('dismiss', { detail: n }))}>×</button>
        </div>`,
      )}
    </div>`;
  }
}

customElements.define('notice-list', NoticeList);
