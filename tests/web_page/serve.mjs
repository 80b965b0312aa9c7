// A small static file server for the web app: `node serve.mjs [DIR]` serves DIR (default: the
// repository's www/) on http://127.0.0.1:$PORT/ (default 8080; 0 picks a free port) with the
// MIME types the page needs (.wasm as application/wasm for streaming compilation, .js as
// text/javascript for module scripts and workers), Content-Length (download progress),
// Last-Modified revalidation, an ETag, and single HTTP Range requests (206 with Content-Range, 416
// past the end, If-Range honoured; Accept-Ranges: bytes). Used by `./build.sh serve` and by the
// browser tests, which also use what a real network does to downloads, asked for by the query:
//   ?norange=1    Range is ignored (200 with the whole file, no Accept-Ranges)
//   ?cut=BYTES    the first response of this URL that reaches file offset BYTES ends there: the
//                 connection closes (the bytes before it were sent); later ones are whole
//   ?stall=BYTES  the same, but the connection stays open and silent until the client leaves
// With SERVE_LOG=1 every request is logged on stdout as one JSON line: {method, url, range,
// status, from, to, sent, cut?, stalled?} (`to` inclusive; `sent`: body bytes written).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(process.argv[2] || path.join(here, '../../www'));
const port = Number(process.env.PORT ?? 8080);
const host = '127.0.0.1';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.gguf': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

const LOG = process.env.SERVE_LOG === '1';
const interrupted = new Set(); // URLs whose ?cut / ?stall already happened

// A single `bytes=` range of a file of `size` bytes: {from, to} (inclusive), 'unsatisfiable', or
// null (no range, or one this server does not serve: several ranges, junk).
function parseRange(h, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec((h || '').trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let from, to;
  if (m[1] === '') { // the last N bytes
    from = Math.max(0, size - Number(m[2]));
    to = size - 1;
  } else {
    from = Number(m[1]);
    to = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < from) return null;
  }
  return from >= size || size === 0 ? 'unsatisfiable' : { from, to };
}

const server = http.createServer((req, res) => {
  const entry = { method: req.method, url: req.url, range: req.headers.range || null };
  if (LOG) res.on('close', () => console.log(JSON.stringify({ ...entry, status: res.statusCode })));
  const send = (code, text) => {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
  let rel, query;
  try {
    const u = new URL(req.url, 'http://x');
    rel = decodeURIComponent(u.pathname);
    query = u.searchParams;
  } catch {
    return send(400, 'bad path\n');
  }
  let file = path.join(root, path.normalize(rel));
  if (file !== root && !file.startsWith(root + path.sep)) return send(403, 'outside the served folder\n');
  fs.stat(file, (err, st) => {
    if (!err && st.isDirectory()) {
      if (!rel.endsWith('/')) {
        res.writeHead(301, { location: rel + '/' });
        return res.end();
      }
      file = path.join(file, 'index.html');
      try { st = fs.statSync(file); } catch (e) { err = e; }
    }
    if (err || !st.isFile()) return send(404, `not found: ${rel}\n`);
    const modified = st.mtime.toUTCString();
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const ranges = query.get('norange') !== '1';
    const headers = {
      'content-type': TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream',
      'content-length': st.size,
      'last-modified': modified,
      etag,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    };
    if (ranges) headers['accept-ranges'] = 'bytes';
    const since = req.headers['if-modified-since'];
    if (!req.headers.range && since && Math.floor(st.mtimeMs / 1000) <= Math.floor(Date.parse(since) / 1000)) {
      res.writeHead(304, { 'last-modified': modified, etag, 'cache-control': 'no-cache' });
      return res.end();
    }
    const ifRange = req.headers['if-range'];
    let range = ranges && (!ifRange || ifRange === etag || ifRange === modified) ? parseRange(req.headers.range, st.size) : null;
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${st.size}`, 'accept-ranges': 'bytes', etag, 'last-modified': modified });
      return res.end();
    }
    let code = 200;
    if (range) {
      code = 206;
      headers['content-range'] = `bytes ${range.from}-${range.to}/${st.size}`;
      headers['content-length'] = range.to - range.from + 1;
    } else {
      range = { from: 0, to: st.size - 1 };
    }
    Object.assign(entry, { from: range.from, to: range.to, sent: 0 });
    res.writeHead(code, headers);
    if (req.method === 'HEAD' || st.size === 0) return res.end();
    // ?cut / ?stall: where this response stops (once per URL).
    const at = query.has('cut') || query.has('stall') ? Number(query.get('cut') ?? query.get('stall')) : NaN;
    let stop = null;
    if (at >= 0 && !interrupted.has(req.url) && range.to >= at) {
      interrupted.add(req.url);
      stop = at;
    }
    const end = stop === null ? range.to : stop - 1;
    if (end < range.from) return interrupt();
    const stream = fs.createReadStream(file, { start: range.from, end });
    stream.on('data', (c) => { entry.sent += c.length; if (!res.write(c)) { stream.pause(); res.once('drain', () => stream.resume()); } });
    stream.on('end', () => (stop === null ? res.end() : interrupt()));
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    function interrupt() {
      if (query.has('stall')) {
        entry.stalled = true;
        if (LOG) console.log(JSON.stringify({ ...entry, stalling: true }));
        return; // silent until the client goes away
      }
      entry.cut = true;
      res.socket.end(); // after what was written: the body ends short of its Content-Length
    }
  });
});

server.listen(port, host, () => {
  const { port: p } = server.address();
  console.log(`serving ${root} on http://${host}:${p}/`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
