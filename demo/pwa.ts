/**
 * Registers the service worker of the production build (dist-demo/sw.js, made by
 * scripts/service-worker-plugin.ts). It precaches the app shell and the embedded model, so the
 * installed app loads and answers offline; hub model files stay in the runtime's Cache API bucket.
 */
export async function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!('serviceWorker' in navigator)) return null;
  try {
    return await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (e) {
    // No service worker (private mode, file://): the app still works online.
    console.warn('[semantic-demo] service worker not registered', e);
    return null;
  }
}
