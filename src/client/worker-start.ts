/**
 * Starts the runtime's worker. Each `new (Shared)Worker(new URL(..., import.meta.url), { type:
 * 'module' })` stays literal: it is the pattern by which Vite, webpack 5 and Parcel find the
 * worker and bundle it for an app that installs this package. In dist/ the build points it at
 * `./runtime.worker.js` (scripts/build-lib.mjs); from source it is the TypeScript file.
 */
export function startDedicatedWorker(): Worker {
  return new Worker(new URL('../../worker/runtime.worker.ts', import.meta.url), { type: 'module', name: 'semantic' });
}

export function startSharedWorker(): SharedWorker {
  return new SharedWorker(new URL('../../worker/runtime.worker.ts', import.meta.url), { type: 'module', name: 'semantic-shared' });
}
