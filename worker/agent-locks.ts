import { AgentBusyError } from '../src/domain/errors.ts';

/**
 * One writer per agent across the tabs of an origin. A tab becomes an agent's writer when it
 * first runs a turn for it, by taking an exclusive Web Lock named after the database, the model
 * and the agent, and stays the writer until it lets go (delete, hand-over) or the tab closes (the
 * browser then releases the lock). Another tab asking for the same agent meanwhile gets
 * AgentBusyError instead of a second engine writing the same memory.
 *
 * Saves and deletes are announced on a BroadcastChannel, so other tabs see agents that this
 * one stored without reloading.
 */
export class AgentLocks {
  private readonly held = new Map<string, () => void>();
  private readonly channel: BroadcastChannel | null;

  constructor(
    private readonly scope: string,
    onNotice: (notice: StoreNotice) => void,
  ) {
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`semantic:${scope}`) : null;
    this.channel?.addEventListener('message', (e: MessageEvent<unknown>) => {
      if (isNotice(e.data)) onNotice(e.data);
    });
  }

  /** Become the agent's writer, or throw AgentBusyError when another tab is. */
  async acquire(agentId: string): Promise<void> {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (this.held.has(agentId) || !locks) return;
    const name = `semantic:${this.scope}:${agentId}`;
    const granted = await new Promise<boolean>((resolve) => {
      void locks.request(name, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        // Held until release() settles this promise.
        return new Promise<void>((release) => this.held.set(agentId, release));
      });
    });
    if (!granted) throw new AgentBusyError(`agent ${agentId} is open in another tab of this app`, { agentId });
  }

  release(agentId: string): void {
    this.held.get(agentId)?.();
    this.held.delete(agentId);
  }

  announce(notice: StoreNotice): void {
    this.channel?.postMessage(notice);
  }

  close(): void {
    for (const id of [...this.held.keys()]) this.release(id);
    this.channel?.close();
  }
}

export interface StoreNotice {
  readonly type: 'saved' | 'deleted';
  readonly agentId: string;
}

function isNotice(v: unknown): v is StoreNotice {
  if (typeof v !== 'object' || v === null) return false;
  const n = v as Partial<StoreNotice>;
  return (n.type === 'saved' || n.type === 'deleted') && typeof n.agentId === 'string';
}
