import { html, css, nothing } from 'lit';
import type { InspectAgent } from '../src/client/index.ts';
import { formatBytes } from './catalog.ts';
import type { RequestMetric } from './chat-request.ts';
import { SessionElement, base, ownerColour } from './session-element.ts';
import './block-grid.ts';
import './rate-plot.ts';

const TIER_TEXT: Record<InspectAgent['tier'], string> = { hot: 'hot (GPU)', warm: 'warm (host memory)', cold: 'cold (IndexedDB)', none: 'none' };

function ago(ms: number): string {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(ms).toLocaleString();
}

/**
 * The cache inspector: the block pool by owner, the agents' tiers and sizes, each request's
 * TTFT and context source, decode throughput, and storage. Everything comes from
 * `client.inspect()`, the stream's usage, and `navigator.storage`.
 */
export class InspectorPanel extends SessionElement {
  static override styles = [
    base,
    css`
      :host { display: grid; grid-template-columns: minmax(0, 1fr); gap: 0.75rem; align-content: start; min-width: 0; }
      section { min-width: 0; }
      h3 { font-size: 0.85rem; margin: 0 0 0.35rem; }
      .scroll { overflow-x: auto; }
      table { border-collapse: collapse; width: 100%; font-size: 0.8rem; }
      th, td { text-align: left; padding: 0.2rem 0.35rem; border-bottom: 1px solid #e2e7f0; white-space: nowrap; }
      th { font-weight: 600; color: #3b4558; }
      .dot { display: inline-block; width: 0.6rem; height: 0.6rem; border-radius: 2px; margin-right: 0.3rem; }
      .warn { color: #b45309; font-weight: 600; }
      td[data-source='cold'], td[data-source='warm'] { color: #1d4ed8; font-weight: 600; }
    `,
  ];

  private agentsTable(agents: readonly InspectAgent[]): unknown {
    return html`<div class="scroll"><table aria-label="Agents' memory">
      <thead><tr><th>Agent</th><th>Tier</th><th>Tokens</th><th>Bytes</th><th title="When its memory was last used (its latest checkpoint)">Last used</th><th>Stored</th></tr></thead>
      <tbody>${agents.map((a, i) => html`<tr data-agent=${a.agentId} data-tier=${a.tier}>
        <td><span class="dot" style="background:${ownerColour(i)}"></span>${a.agentId}</td>
        <td>${TIER_TEXT[a.tier]}</td>
        <td>${a.tokens}</td>
        <td>${formatBytes(a.bytes)}</td>
        <td>${ago(a.lastUsed)}</td>
        <td>${a.unsaved ? html`<span class="warn" title=${a.unsaved.message}>unsaved</span>` : a.stored ? 'IndexedDB' : 'not yet'}</td>
      </tr>`)}</tbody>
    </table></div>`;
  }

  private requestsTable(requests: readonly RequestMetric[]): unknown {
    return html`<div class="scroll"><table aria-label="Requests">
      <thead><tr><th>#</th><th>Agent</th><th>TTFT</th><th>Context</th><th title="Prompt tokens not recomputed, of the prompt">Skipped</th><th>Reply</th></tr></thead>
      <tbody>${[...requests].reverse().map((r) => {
        const ttft = r.firstTokenAt !== null ? `${Math.round(r.firstTokenAt - r.startedAt)} ms` : r.error ? '—' : '…';
        const decodeMs = r.endedAt !== null && r.firstTokenAt !== null ? r.endedAt - r.firstTokenAt : 0;
        const tps = decodeMs > 0 && r.completionTokens > 1 ? ` · ${((r.completionTokens - 1) / (decodeMs / 1000)).toFixed(1)} tok/s` : '';
        return html`<tr data-agent=${r.agentId} data-source=${r.source ?? ''} data-skipped=${r.skippedTokens} data-prompt=${r.promptTokens} data-chunks=${r.chunks} data-start=${r.startedAt} data-first=${r.firstTokenAt ?? ''} data-end=${r.endedAt ?? ''}>
          <td>${r.seq}</td><td>${r.agentId}</td><td>${ttft}</td>
          <td data-source=${r.source ?? ''}>${r.error ? html`<span class="warn">${r.error}</span>` : (r.source ?? '…')}</td>
          <td>${r.endedAt !== null && !r.error ? `${r.skippedTokens} of ${r.promptTokens}` : '…'}</td>
          <td>${r.completionTokens ? `${r.completionTokens} tok${tps}` : '…'}</td>
        </tr>`;
      })}</tbody>
    </table></div>`;
  }

  override render(): unknown {
    const s = this.session;
    const snap = s?.snapshot;
    if (!s || !snap) return html`<h2>Cache inspector</h2><p class="muted">Waiting for the model…</p>`;
    const st = s.storage;
    return html`
      <h2>Cache inspector</h2>
      <section aria-label="Block pool">
        <h3>KV block pool · ${snap.model.id} · ${formatBytes(snap.model.bytesPerBlock)} per block</h3>
        <p class="muted" id="pool-summary">${snap.pool.used} used · ${snap.pool.shared} shared · ${snap.pool.cached} cached · ${snap.pool.free} free of ${snap.pool.totalBlocks} · ${snap.engine.running} running, ${snap.engine.waiting} waiting</p>
        <block-grid .snapshot=${snap}></block-grid>
      </section>
      <section aria-label="Agents' memory"><h3>Agents</h3>${this.agentsTable(snap.agents)}</section>
      <section aria-label="Requests"><h3>Requests</h3>${this.requestsTable(s.requests)}</section>
      <section aria-label="Decode speed"><h3>Decode tokens/s</h3><rate-plot .samples=${s.rate.samples}></rate-plot></section>
      <section aria-label="Storage">
        <h3>Storage</h3>
        <p class="muted" id="storage">${st ? html`${formatBytes(st.usage)} used of ${formatBytes(st.quota)} · persistence ${st.persisted ? 'granted' : 'not granted (the browser may clear it under pressure)'}` : 'navigator.storage is not available'}</p>
        ${snap.deviceRecoveries > 0 ? html`<p class="muted">GPU device recovered ${snap.deviceRecoveries} time(s).</p>` : nothing}
        <button @click=${() => s.loseDevice()} title="Destroy the GPU device as a driver reset would; the runtime recovers">Simulate GPU loss</button>
      </section>
    `;
  }
}

customElements.define('inspector-panel', InspectorPanel);
