// A small static file server for the web app: `node serve.mjs [DIR]` serves DIR (default: the
// repository's www/) on http://127.0.0.1:$PORT/ (default 8080; 0 picks a free port) with the
// MIME types the page needs (.wasm as application/wasm for streaming compilation, .js as
// text/javascript for module scripts and workers), Content-Length (download progress) and
// Last-Modified revalidation. Used by `./build.sh serve` and by the browser tests.

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

const server = http.createServer((req, res) => {
  const send = (code, text) => {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
  let rel;
  try {
    rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
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
    const headers = {
      'content-type': TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream',
      'content-length': st.size,
      'last-modified': modified,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    };
    const since = req.headers['if-modified-since'];
    if (since && Math.floor(st.mtimeMs / 1000) <= Math.floor(Date.parse(since) / 1000)) {
      res.writeHead(304, { 'last-modified': modified, 'cache-control': 'no-cache' });
      return res.end();
    }
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();
    fs.createReadStream(file).pipe(res);
  });
});

server.listen(port, host, () => {
  const { port: p } = server.address();
  console.log(`serving ${root} on http://${host}:${p}/`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
