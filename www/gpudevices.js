// The GPU devices the engine opens, in its worker (worker.js).
//
// wgpu's web backend destroys nothing when Rust drops a buffer or a device: their GPU memory waits
// for the JavaScript garbage collector, which may not come for a long time (the JS heap barely
// grows). So the worker notes every GPUDevice a call into the engine opens (`opening`), and
// destroys it as soon as the engine that owns it is freed (at once for a plan): a model swap really
// frees the old model's memory before the new one's weights are allocated.
//
// Faults: every GPUDevice the engine opens is also watched for its loss (a driver reset, a GPU taken away, the browser reclaiming it) and for errors WebGPU
// reports outside any call (uncapturederror: out of memory, a buffer over the adapter's limits).
// They arrive asynchronously, so the engine's own checks may not have seen them yet when a load
// or a run ends: `fault` waits for the work in flight, then says what happened as an ErrorInfo
// the page can show. After a fault the device's state cannot be trusted: the worker frees the
// model, and loading it again (no page reload) starts on a new device.

import { errorInfo, isErrorInfo } from './protocol.js';

const watched = new WeakMap(); // GPUDevice -> {lost: GPUDeviceLostInfo|null, errors: GPUError[], ours}

let opened = null;
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    watch(device);
    if (opened) opened.push(device);
    return device;
  };
}

/** Runs `fn` (a call into the engine): {value, devices: the GPUDevices it opened}. If it fails,
 *  they are destroyed, and a fault on them (below) is the error rather than the engine's. */
export async function opening(fn) {
  const devices = (opened = []);
  try {
    return { value: await fn(), devices };
  } catch (e) {
    const f = isErrorInfo(e) && e.kind === 'input' ? null : await fault(devices, 'load');
    for (const d of devices) d.destroy();
    throw f || e;
  } finally {
    opened = null;
  }
}

function watch(device) {
  const w = { lost: null, errors: [], ours: false };
  watched.set(device, w);
  device.lost.then((info) => { if (!w.ours) w.lost = info; });
  device.addEventListener('uncapturederror', (e) => w.errors.push(e.error));
}

/** The worker itself destroys `device` (a swap, an unload): not a fault. */
export function release(device) {
  const w = watched.get(device);
  if (w) w.ours = true;
}

/** Forgets the errors reported so far (before a new request); returns null. */
export function clear(devices) {
  for (const d of devices) { const w = watched.get(d); if (w) w.errors = []; }
  return null;
}

/** Whether a fault has already been seen on `devices` (no waiting). */
export function seen(devices) {
  return devices.some((d) => { const w = watched.get(d); return w && (w.lost || w.errors.length); });
}

const OOM = /out of memory|OutOfMemory|exceeds the max(imum)? buffer size|allocation failed|too large/i;

/** The fault of `devices`, if any, as an ErrorInfo (`during`: 'load' or 'run'), or null. Waits
 *  (at most `ms`) for the work submitted so far, so that errors in flight arrive first. */
export async function fault(devices, during, ms = 1000) {
  if (!devices.length) return null;
  const done = Promise.all(devices.map((d) => d.queue.onSubmittedWorkDone().catch(() => {})));
  await Promise.race([done, new Promise((r) => setTimeout(r, ms))]);
  await new Promise((r) => setTimeout(r, 0)); // a loss resolves its promise in a task of its own
  const ws = devices.map((d) => watched.get(d)).filter(Boolean);
  const again = during === 'run'
    ? 'The model was unloaded to free the GPU: load it again to go on (no need to reload the page).'
    : 'Nothing was loaded: try again (no need to reload the page).';
  const lost = ws.find((w) => w.lost);
  if (lost) {
    const why = [lost.lost.reason, lost.lost.message].filter(Boolean).join(': ');
    return errorInfo('gpu', `The GPU device was lost (${why || 'no reason given'}): the browser or the graphics driver reset the GPU or took it away. ${again}`);
  }
  const errors = ws.flatMap((w) => w.errors);
  if (!errors.length) return null;
  const oom = errors.find((e) => (self.GPUOutOfMemoryError && e instanceof GPUOutOfMemoryError) || OOM.test(e.message));
  const first = (oom || errors[0]).message.split('\n')[0];
  if (oom) {
    return errorInfo('limits', `The GPU ran out of memory (${first}). ${again} A smaller or more quantized model (q4_0), a shorter prompt or answer, or closing other GPU-heavy tabs needs or frees memory.`);
  }
  return errorInfo('gpu', `The GPU reported an error (${first}). ${again}`);
}
