// The demo's service worker (a template: scripts/service-worker-plugin.ts fills in VERSION and
// PRECACHE at build time and emits it as sw.js). It precaches the app shell and the embedded
// model so the installed app works offline. Hub model files are not its business: the runtime
// keeps them in its own Cache API bucket ('semantic-models'), which this worker never deletes.
const VERSION = '__VERSION__';
const PRECACHE = __PRECACHE__;
const CACHE = `semantic-demo-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  const old = (name) => name.startsWith('semantic-demo-') && name !== CACHE;
  event.waitUntil(
    caches.keys().then((names) => Promise.all(names.filter(old).map((n) => caches.delete(n)))).then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || (request.method !== 'GET' && request.method !== 'HEAD')) return;
  event.respondWith(respond(request, url));
});

async function respond(request, url) {
  const cache = await caches.open(CACHE);
  const key = request.mode === 'navigate' ? '/index.html' : url.pathname;
  const hit = await cache.match(key);
  if (hit) return request.method === 'HEAD' ? new Response(null, { status: hit.status, headers: hit.headers }) : hit;
  try {
    return await fetch(request);
  } catch (error) {
    // Offline and not precached. A model file the loader only probes for (an optional
    // chat_template.jinja, say) is then simply absent, as the server would say.
    if (url.pathname.startsWith('/models/')) return new Response(null, { status: 404, statusText: 'Not cached (offline)' });
    throw error;
  }
}
