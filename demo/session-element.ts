import { LitElement, css } from 'lit';
import type { DemoSession } from './session.ts';

/** A component that renders from the session and re-renders when it changes (Lit batches them). */
export class SessionElement extends LitElement {
  static override properties = { session: { attribute: false } };
  declare session: DemoSession | null;
  private readonly onChange = (): void => this.requestUpdate();
  private watched: DemoSession | null = null;

  constructor() {
    super();
    this.session = null;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.watch();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.watched?.removeEventListener('change', this.onChange);
    this.watched = null;
  }

  protected override willUpdate(): void {
    this.watch();
  }

  private watch(): void {
    if (this.watched === this.session || !this.isConnected) return;
    this.watched?.removeEventListener('change', this.onChange);
    this.watched = this.session;
    this.watched?.addEventListener('change', this.onChange);
  }
}

/** Shared look: system font, compact controls, visible focus. */
export const base = css`
  :host { display: block; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b2333; }
  h2 { font-size: 1rem; margin: 0 0 0.5rem; }
  button, input, select, textarea { font: inherit; font-size: 0.9rem; }
  button { border: 1px solid #9aa6bd; background: #f4f6fa; border-radius: 6px; padding: 0.3rem 0.6rem; cursor: pointer; color: inherit; }
  button:hover:not(:disabled) { background: #e6ebf4; }
  button.primary { background: #1d4ed8; border-color: #1d4ed8; color: #fff; }
  button.primary:hover:not(:disabled) { background: #1e40af; }
  button:disabled { opacity: 0.55; cursor: default; }
  :focus-visible { outline: 3px solid #f59e0b; outline-offset: 1px; }
  input, select, textarea { border: 1px solid #9aa6bd; border-radius: 6px; padding: 0.3rem 0.4rem; background: #fff; color: inherit; min-width: 0; }
  .muted { color: #5b6579; font-size: 0.85rem; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  .card { background: #fff; border: 1px solid #d5dbe6; border-radius: 8px; padding: 0.75rem; }
`;

/** A colour per agent index, the same in the grid, its legend and the agents table. */
export const OWNER_COLOURS = ['#14b8a6', '#3b82f6', '#f97316', '#a855f7', '#ec4899', '#84cc16', '#eab308', '#06b6d4', '#ef4444', '#6366f1'];

export function ownerColour(index: number): string {
  return OWNER_COLOURS[index % OWNER_COLOURS.length];
}
