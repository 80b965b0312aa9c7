// Models kept in the browser: the Cache API cache of downloaded and picked model files and its
// index (one JSON entry per model), shared by the page (list, delete) and the worker (save, read).
// A URL model's file is kept in parts (`parts`: their sizes; `partKey` names them, download.js
// writes them); an entry with `partial: true` is a download not finished yet, which loading its
// URL again resumes. The bundled demo model is not here: the service worker keeps it with the app
// shell.

export const MODEL_CACHE = 'unmask-models-v1';
const BASE = new URL('.', self.location.href).href; // the page's folder, from the page or the worker
const INDEX_KEY = new URL('__unmask__/models-index.json', BASE).href;

// A same-origin URL under which a picked local file is stored (never requested from a server).
export function cacheKeyFor(id, name) {
  return new URL(`__unmask__/local/${encodeURIComponent(id)}/${encodeURIComponent(name)}`, BASE).href;
}

// The same-origin URL under which part `i` of a downloaded model file is stored.
export function partKey(id, i) {
  return new URL(`__unmask__/parts/${encodeURIComponent(id)}/${i}`, BASE).href;
}

// Every cache key an index entry owns.
export function entryKeys(entry) {
  return [...Object.values(entry.files || {}).flat(), ...(entry.parts || []).map((_, i) => partKey(entry.id, i))].filter(Boolean);
}

export async function readIndex() {
  if (!self.caches) return [];
  const resp = await (await caches.open(MODEL_CACHE)).match(INDEX_KEY);
  if (!resp) return [];
  try {
    const list = await resp.json();
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

export async function writeIndex(list) {
  const cache = await caches.open(MODEL_CACHE);
  await cache.put(INDEX_KEY, new Response(JSON.stringify(list), { headers: { 'content-type': 'application/json' } }));
}

export async function deleteSaved(id) {
  const list = await readIndex();
  const entry = list.find((m) => m.id === id);
  if (!entry) return;
  const cache = await caches.open(MODEL_CACHE);
  for (const key of entryKeys(entry)) await cache.delete(key);
  await writeIndex(list.filter((m) => m.id !== id));
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}
