// The service worker that makes the page work offline after the first visit: it keeps the app
// shell, the engine (pkg/) and the bundled model (models/, listed in models/manifest.json).
// Shell files are served network-first (so a rebuilt page is picked up at once) and fall back to
// the cache when the server is unreachable; model files are served cache-first (their URLs carry
// a version). Cross-origin requests and Range requests (model downloads) are left alone: the
// worker keeps those.

const CACHE = 'unmask-shell-v1';
const SHELL = ['./', 'index.html', 'style.css', 'app.js', 'settings.js', 'view.js', 'dgview.js', 'dgpage.js', 'models.js', 'unmask.js', 'protocol.js', 'worker.js', 'gpudevices.js', 'download.js', 'icon.svg', 'pkg/unmask.js', 'pkg/unmask_bg.wasm'];

async function bundledModelUrls() {
  try {
    const m = await (await fetch('models/manifest.json', { cache: 'no-cache' })).json();
    const urls = [];
    for (const e of m.bundled || []) {
      const v = e.version ? `?v=${encodeURIComponent(e.version)}` : '';
      for (const f of Object.values(e.files || {})) if (f) urls.push(`models/${f}${v}`);
    }
    return urls;
  } catch {
    return [];
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL.map((u) => new Request(u, { cache: 'no-cache' })));
    // The bundled model is optional (a page built without one loads models from URLs or files).
    try {
      await cache.add(new Request('models/manifest.json', { cache: 'no-cache' }));
      for (const u of await bundledModelUrls()) {
        if (!(await cache.match(u))) await cache.add(u);
      }
    } catch (e) {
      console.warn('the bundled model is not available offline:', e);
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('unmask-shell-') && k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

async function networkFirst(req) {
  const cache = await caches.open(CACHE);
  try {
    const resp = await fetch(req, { cache: 'no-cache' });
    if (resp.ok) await cache.put(req, resp.clone());
    return resp;
  } catch (e) {
    const hit = await cache.match(req, { ignoreVary: true }) || (req.mode === 'navigate' ? await cache.match('./') : null);
    if (hit) return hit;
    throw e;
  }
}

async function cacheFirst(req) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(req);
  if (hit) return hit;
  const resp = await fetch(req);
  if (resp.ok) await cache.put(req, resp.clone());
  return resp;
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  // Range requests (a URL model's download, download.js) go to the network as they are: the Cache
  // API keeps no partial (206) responses, and a cached whole file is not the range asked for.
  if (req.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/__unmask__/') || req.headers.has('range')) return;
  const scope = new URL(self.registration.scope);
  const rel = url.pathname.slice(scope.pathname.length);
  if (rel.startsWith('models/') && rel !== 'models/manifest.json') event.respondWith(cacheFirst(req));
  else event.respondWith(networkFirst(req));
});
