// What the page tests share: named checks with their times (a failure prints its stack and
// stops the run), a test server's address from its first line, and Debian's Chromium launched
// headless with WebGPU (SwiftShader) and without the background connections this machine refuses.

import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

// `check(name, fn)` runs and times one check; `results` lists {name, ok} in order.
export function checks() {
  const results = [];
  async function check(name, fn) {
    const t0 = Date.now();
    try {
      await fn();
      results.push({ name, ok: true });
      console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      results.push({ name, ok: false });
      console.log(`FAIL ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${e.stack || e}`);
      throw e;
    }
  }
  return { results, check };
}

// Resolves with {child, url} once the server `child` prints the address it listens on.
export function listening(child) {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const m = text.match(/on (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening: ${text}`)));
    setTimeout(() => reject(new Error('the server did not start in 20 s')), 20000);
  });
}

export function launchChromium(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}
