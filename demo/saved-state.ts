/**
 * What the page itself remembers across reloads (localStorage): which agents exist, their
 * system prompts and conversation text, and the scene. The agents' KV memory is the runtime's
 * (GPU, host memory, IndexedDB); the page keeps only the text it re-sends, whose prompt tokens
 * the runtime then finds cached instead of recomputing.
 */
export interface ChatLine {
  readonly role: 'user' | 'assistant';
  /** Who spoke, as shown (a scene character, "You", the agent's name). */
  readonly speaker: string;
  readonly content: string;
}

export interface AgentRecord {
  readonly id: string;
  readonly name: string;
  readonly system: string;
  readonly lines: readonly ChatLine[];
}

export interface SceneState {
  readonly system: string;
  readonly characters: readonly string[];
  /** Whose turn it is next (index into characters). */
  readonly next: number;
  readonly lines: ReadonlyArray<{ readonly speaker: string; readonly content: string }>;
}

const VERSION = 'semantic-demo:v1';

/** Agents and scene are per model: another model's KV memory cannot serve them. */
function key(modelId: string, what: 'agents' | 'scene'): string {
  return `${VERSION}:${modelId}:${what}`;
}

function read<T>(k: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(k);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback; // corrupt or blocked storage: start fresh rather than fail the page
  }
}

export function loadAgents(modelId: string): AgentRecord[] {
  const list = read<AgentRecord[]>(key(modelId, 'agents'), []);
  return Array.isArray(list) ? list.filter((a) => typeof a?.id === 'string' && Array.isArray(a.lines)) : [];
}

export function saveAgents(modelId: string, agents: readonly AgentRecord[]): void {
  localStorage.setItem(key(modelId, 'agents'), JSON.stringify(agents));
}

export function loadScene(modelId: string): SceneState | null {
  return read<SceneState | null>(key(modelId, 'scene'), null);
}

export function saveScene(modelId: string, scene: SceneState | null): void {
  if (scene) localStorage.setItem(key(modelId, 'scene'), JSON.stringify(scene));
  else localStorage.removeItem(key(modelId, 'scene'));
}

/** An agent id the runtime accepts ([A-Za-z0-9_.:@-]), unique among `taken`. */
export function agentIdFor(name: string, taken: ReadonlySet<string>): string {
  const base = name.trim().toLowerCase().replace(/[^a-z0-9_.:@-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'agent';
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  return id;
}
