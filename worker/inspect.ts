import { buildInspectSnapshot } from '../src/application/inspect-snapshot.ts';
import type { InspectSnapshot } from '../src/ports/inspect.ts';
import type { AgentRuntime } from './agent-runtime.ts';

/** The cache inspector's snapshot of the worker's runtime (read-only; see ports/inspect.ts). */
export async function inspectRuntime(agents: AgentRuntime, modelId: string): Promise<InspectSnapshot> {
  await agents.ready();
  const spec = agents.backend.extractModelSpec();
  const stored = (await agents.store.listStoredAll()).filter((r) => r.modelFingerprint === spec.fingerprint);
  return buildInspectSnapshot({ engine: agents.engine, store: agents.store, spec, modelId, stored, deviceRecoveries: agents.recoveries });
}
