import { LitElement, css, html } from 'lit';

/**
 * A small live line plot of decode tokens/s (all agents together) on a canvas: no plotting
 * library, a few dozen points redrawn when new samples arrive.
 */
export class RatePlot extends LitElement {
  static override properties = { samples: { attribute: false } };
  declare samples: ReadonlyArray<{ readonly t: number; readonly tps: number }>;

  static override styles = css`
    :host { display: block; }
    canvas { width: 100%; height: 72px; display: block; background: #f8fafc; border: 1px solid #e2e7f0; border-radius: 6px; }
    .now { font-size: 0.8rem; color: #3b4558; }
  `;

  constructor() {
    super();
    this.samples = [];
  }

  protected override updated(): void {
    const canvas = this.renderRoot.querySelector('canvas');
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const ratio = globalThis.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
    ctx.clearRect(0, 0, w, h);
    const pts = this.samples;
    if (pts.length < 2) return;
    const max = Math.max(1, ...pts.map((p) => p.tps)) * 1.15;
    const t0 = pts[0].t;
    const span = Math.max(1, pts[pts.length - 1].t - t0);
    ctx.strokeStyle = '#1d4ed8';
    ctx.lineWidth = 2 * ratio;
    ctx.beginPath();
    pts.forEach((p, i) => {
      const x = ((p.t - t0) / span) * w;
      const y = h - (p.tps / max) * (h - 4 * ratio) - 2 * ratio;
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
    ctx.fillStyle = '#5b6579';
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    ctx.fillText(`${max.toFixed(0)} tok/s`, 4 * ratio, 12 * ratio);
  }

  override render(): unknown {
    const last = this.samples.at(-1)?.tps ?? 0;
    const peak = Math.max(0, ...this.samples.map((s) => s.tps));
    return html`<canvas role="img" aria-label=${`Decode tokens per second over the last ${this.samples.length} seconds; now ${last.toFixed(0)}, peak ${peak.toFixed(0)}`}></canvas>
      <div class="now">now ${last.toFixed(1)} tok/s · peak ${peak.toFixed(1)} tok/s</div>`;
  }
}

customElements.define('rate-plot', RatePlot);
