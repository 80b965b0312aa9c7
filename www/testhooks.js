// TEST ONLY: fault injection in the engine's worker (protocol.js's 'debug' request). worker.js
// imports this module only when its URL carries `?test-hooks`, which unmask.js adds only when the
// page's own URL has `test-hooks` in its query (tests/web_page/faults.test.mjs opens the page so);
// without it a 'debug' request is refused and nothing here is loaded. It makes real WebGPU
// faults, which the engine and the worker must report as they would in the field:
//   {what: 'lose-device'}          destroys the GPU device(s) of the loaded model (a device loss)
//   {what: 'lose-device-at-submit'} the same, mid-generation: just before the engine's next queue
//                                  submission (see below)
//   {what: 'oom', bytes}           the next buffer of at least `bytes` is asked for with a size over
//                                  the device's maxBufferSize (WebGPU's error for a buffer it cannot
//                                  allocate), once
//   {what: 'oom', bytes: null}     disarms it
// Each answers with what it did: {destroyed: n} / {armed: ...}.
//
// Why a loss mid-generation waits for a submission: Chromium's SwiftShader (the tests' adapter)
// can wedge its GPU process when a device is destroyed while a readback of it is pending: the
// worker's next requestAdapter then never returns (seen about one run in four on a loaded 2-core
// machine), a browser fault rather than the loss the engine must survive. Just before a submission
// the engine has nothing in flight (it awaited the last step's readback), yet it is mid-run: the
// submission, its readback and the rest of the generation meet the lost device.

import { errorInfo } from './protocol.js';

export function install({ devices }) {
  let oomAt = null, injected = 0;
  let loseAtSubmit = false;
  const submit = GPUQueue.prototype.submit;
  GPUQueue.prototype.submit = function (...args) {
    if (loseAtSubmit) {
      loseAtSubmit = false;
      for (const d of devices()) d.destroy();
    }
    return submit.apply(this, args);
  };
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
      case 'lose-device-at-submit':
        loseAtSubmit = devices().length > 0;
        return { armed: loseAtSubmit };
      case 'oom':
        oomAt = msg.bytes ?? null;
        return { armed: oomAt, injected };
      default:
        throw errorInfo('input', `unknown debug hook ${msg.what}: lose-device, lose-device-at-submit or oom`, 'what');
    }
  };
}
