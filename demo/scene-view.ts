import { html, css } from 'lit';
import { SCENE_CAST, SCENE_SYSTEM } from './characters.ts';
import { sceneMessages } from './conversation.ts';
import { loadScene, saveScene, type SceneState } from './saved-state.ts';
import { SessionElement, base } from './session-element.ts';

/** Scene agents are named after their character; their memory persists like any agent's. */
function agentIdOf(character: string): string {
  return `scene-${character.toLowerCase()}`;
}

function freshScene(): SceneState {
  return { system: SCENE_SYSTEM, characters: SCENE_CAST, next: 0, lines: [] };
}

/**
 * A scene: the cast speak in turn. Each character is an agent with its own memory of the scene
 * (its own speeches, and the others' as it heard them), and every memory opens with the same
 * scene prompt, whose KV blocks they share. The text and whose turn it is survive a reload
 * (localStorage); the memories come back from IndexedDB.
 */
export class SceneView extends SessionElement {
  static override properties = { ...SessionElement.properties, scene: { state: true }, playing: { state: true } };
  declare scene: SceneState;
  declare playing: boolean;

  static override styles = [
    base,
    css`
      .bar { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin: 0.5rem 0; }
      ol { list-style: none; padding: 0.75rem; margin: 0; background: #fffdf7; border: 1px solid #eadfc4; border-radius: 8px; font-family: Georgia, 'Times New Roman', serif; max-height: 55vh; overflow-y: auto; }
      li { margin: 0 0 0.6rem; white-space: pre-wrap; overflow-wrap: anywhere; }
      .who { font-variant: small-caps; font-weight: 700; display: block; }
    `,
  ];

  constructor() {
    super();
    this.scene = freshScene();
    this.playing = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    const id = this.session?.model?.id;
    if (id) this.scene = loadScene(id) ?? freshScene();
  }

  private save(scene: SceneState): void {
    this.scene = scene;
    if (this.session?.model) saveScene(this.session.model.id, scene);
  }

  /** The next character speaks; returns false when the turn failed. */
  private async nextLine(): Promise<boolean> {
    const s = this.session;
    if (!s) return false;
    const speaker = this.scene.characters[this.scene.next % this.scene.characters.length];
    const reply = await s.turn(agentIdOf(speaker), sceneMessages(this.scene, speaker));
    if (reply === null) return false;
    this.save({ ...this.scene, next: (this.scene.next + 1) % this.scene.characters.length, lines: [...this.scene.lines, { speaker, content: reply }] });
    return true;
  }

  private async play(turns: number): Promise<void> {
    this.playing = true;
    for (let i = 0; i < turns && (await this.nextLine()); i++);
    this.playing = false;
  }

  private async reset(): Promise<void> {
    const s = this.session;
    for (const c of this.scene.characters) await s?.engine?.agents.delete(agentIdOf(c)).catch(() => false);
    this.save(freshScene());
    await s?.refresh();
  }

  override render(): unknown {
    const s = this.session;
    const speaking = s ? this.scene.characters.find((c) => s.streaming.has(agentIdOf(c))) : undefined;
    const ready = s?.phase.kind === 'ready' && !this.playing;
    return html`
      <h2>Scene: ${this.scene.characters.join(', ')}</h2>
      <p class="muted">${this.scene.system}</p>
      <div class="bar">
        <button class="primary" ?disabled=${!ready} @click=${() => this.play(1)}>Next line</button>
        <button ?disabled=${!ready} @click=${() => this.play(this.scene.characters.length)}>Play a round</button>
        <button ?disabled=${!ready} @click=${() => this.reset()}>New scene</button>
        <span class="muted">Next: ${this.scene.characters[this.scene.next % this.scene.characters.length]}</span>
      </div>
      <ol aria-label="Scene" aria-live="polite">
        ${this.scene.lines.map((l) => html`<li><span class="who">${l.speaker}</span>${l.content}</li>`)}
        ${speaking ? html`<li aria-busy="true"><span class="who">${speaking}</span>${s?.streaming.get(agentIdOf(speaking))}</li>` : ''}
      </ol>
    `;
  }
}

customElements.define('scene-view', SceneView);
