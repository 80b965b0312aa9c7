// TEST ONLY: fault injection in the engine's worker (protocol.js's 'debug' request). worker.js
// imports this module only when its URL carries `?test-hooks`, which unmask.js adds only when the
// page's own URL has `test-hooks` in its query (tests/web_page/faults.test.mjs opens the page so);
// without it a 'debug' request is refused and nothing here is loaded. It makes real WebGPU
// faults, which the engine and the worker must report as they would in the field:
//   {what: 'lose-device'}          destroys the GPU device(s) of the loaded model (a device loss)
//   {what: 'oom', bytes}           the next buffer of at least `bytes` is asked for with a size over
//                                  the device's maxBufferSize (WebGPU's error for a buffer it cannot
//                                  allocate), once
//   {what: 'oom', bytes: null}     disarms it
// Each answers with what it did: {destroyed: n} / {armed: bytes, injected: buffers so far}.

import { errorInfo } from './protocol.js';

export function install({ devices }) {
  let oomAt = null, injected = 0;
  const createBuffer = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (desc) {
    if (oomAt != null && desc && desc.size >= oomAt) {
      oomAt = null;
      injected++;
      desc = { ...desc, size: this.limits.maxBufferSize + 4 };
    }
    return createBuffer.call(this, desc);
  };
  return function debug(msg) {
    switch (msg.what) {
      case 'lose-device': {
        const ds = devices();
        for (const d of ds) d.destroy();
        return { destroyed: ds.length };
      }
      case 'oom':
        oomAt = msg.bytes ?? null;
        return { armed: oomAt, injected };
      default:
        throw errorInfo('input', `unknown debug hook ${msg.what}: lose-device or oom`, 'what');
    }
  };
}
