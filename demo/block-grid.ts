import { LitElement, css, html, nothing } from 'lit';
import type { InspectSnapshot } from '../src/client/index.ts';
import { ownerColour } from './session-element.ts';

/**
 * The hot KV pool as a grid, one cell per block: coloured by the agent that holds it, striped
 * when several hold it (a shared prefix), dark when only a running request holds it, hatched
 * when free but still caching an indexed prefix, pale when empty.
 */
export class BlockGrid extends LitElement {
  static override properties = { snapshot: { attribute: false } };
  declare snapshot: InspectSnapshot | null;

  static override styles = css`
    :host { display: block; }
    .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(12px, 1fr)); gap: 2px; }
    .b { aspect-ratio: 1; border-radius: 2px; background: #eef1f6; box-sizing: border-box; }
    .b.cached { background: repeating-linear-gradient(45deg, #cfd6e2 0 2px, #eef1f6 2px 4px); }
    .b.running { background: #334155; }
    .b.shared { outline: 2px solid #111827; outline-offset: -2px; }
    .legend { display: flex; flex-wrap: wrap; gap: 0.25rem 0.75rem; font-size: 0.75rem; margin-top: 0.4rem; color: #3b4558; }
    .legend span { display: inline-flex; align-items: center; gap: 0.25rem; }
    .legend i { width: 10px; height: 10px; border-radius: 2px; display: inline-block; background: #eef1f6; }
  `;

  constructor() {
    super();
    this.snapshot = null;
  }

  private cell(b: InspectSnapshot['pool']['blocks'][number], id: number, names: readonly string[]): unknown {
    const who = b.owners.map((o) => names[o]).join(', ');
    const kind = b.state === 'used' && b.owners.length === 0 ? 'running' : b.state;
    const colours = b.owners.map(ownerColour);
    // One owner: its colour; several: stripes of each owner's colour.
    const fill = colours.length === 1 ? colours[0] : colours.length > 1 ? `linear-gradient(135deg, ${colours.map((c, i) => `${c} ${(i * 100) / colours.length}% ${((i + 1) * 100) / colours.length}%`).join(', ')})` : '';
    const title = `block ${id}: ${b.state}${who ? `, held by ${who}` : kind === 'running' ? ', held by a running request' : ''}${b.shared ? `, shared (${b.refs} refs)` : ''}${b.indexed ? ', prefix-indexed' : ''}`;
    return html`<div class="b ${kind} ${b.shared ? 'shared' : ''}" style=${fill ? `background:${fill}` : ''} title=${title} data-state=${b.state} data-owners=${who} ?data-shared=${b.shared}></div>`;
  }

  override render(): unknown {
    const s = this.snapshot;
    if (!s) return nothing;
    const names = s.agents.map((a) => a.agentId);
    const p = s.pool;
    const label = `KV pool: ${p.totalBlocks} blocks of ${s.model.blockTokens} tokens; ${p.used} used, ${p.shared} shared, ${p.cached} cached, ${p.free} free`;
    return html`
      <div class="grid" role="img" aria-label=${label}>${p.blocks.map((b, i) => this.cell(b, i, names))}</div>
      ${p.blocks.length < p.totalBlocks ? html`<p class="legend">…and ${p.totalBlocks - p.blocks.length} more blocks (counted above).</p>` : nothing}
      <div class="legend" aria-hidden="true">
        ${names.map((n, i) => (s.agents[i].hotBlocks > 0 ? html`<span><i style="background:${ownerColour(i)}"></i>${n}</span>` : nothing))}
        <span><i style="outline:2px solid #111827;outline-offset:-2px"></i>shared</span>
        <span><i style="background:#334155"></i>running request</span>
        <span><i style="background:repeating-linear-gradient(45deg,#cfd6e2 0 2px,#eef1f6 2px 4px)"></i>cached prefix</span>
        <span><i></i>free</span>
      </div>
    `;
  }
}

customElements.define('block-grid', BlockGrid);
