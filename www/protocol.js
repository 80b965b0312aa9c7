// The messages between the engine API (unmask.js, in the page) and the engine's worker
// (worker.js): their types, and the structured error both sides pass around.
//
// Every request carries an `id` (unique per engine); the worker answers each with exactly one
// final message, `result` or `error`, and in between sends events that carry the same id.
// Requests run one at a time in order, except `validate`, `stats`, `debug` and `cancel`, which act
// at once.
//
// Requests, page -> worker:
//   {type:'init', id}                                  -> result: {adapter, defaults}
//   {type:'load', id, source, quant?}                  -> events progress, plan, unloaded, warning,
//                                                         saved; result: ModelInfo
//   {type:'plan', id, source, quant?}                  -> events progress; result: PlanInfo
//   {type:'run', id, request, remask?, follow?}        -> events start, step, text, unloaded;
//                                                         result: the engine's result object.
//                                                         If the GPU fails during it (device lost,
//                                                         out of memory), the model is freed (an
//                                                         'unloaded' event) and the error says so:
//                                                         kind 'gpu' or 'limits'; load again.
//   {type:'validate', id, options, infill?}            -> result: null or an ErrorInfo
//   {type:'unload', id}                                -> result: null
//   {type:'stats', id, gc?}                            -> result: {wasm_bytes, js_heap_bytes|null,
//                                                         model, devices} (the worker's memory)
//   {type:'debug', id, what, ...}                      TEST ONLY (www/testhooks.js): fault injection,
//                                                         refused (kind 'input') unless the worker's
//                                                         URL has ?test-hooks (unmask.js adds it when
//                                                         the page's URL has it): what 'lose-device'
//                                                         destroys the model's GPU device (at once;
//                                                         'lose-device-at-submit': before the next
//                                                         queue submission); 'oom',
//                                                         bytes: the next buffer >= bytes is asked
//                                                         over maxBufferSize -> {destroyed|armed}
// Notification, page -> worker (no answer of its own):
//   {type:'cancel', id}   cancels request `id`: a queued one is answered with an error of kind
//                         'cancelled'; a running generation stops after its current step and
//                         resolves with `cancelled: true` (and what it had so far); a running
//                         load or plan stops its download (an error of kind 'cancelled').
// Events, worker -> page: {type:'progress'|'plan'|'unloaded'|'warning'|'saved'|'start'|'step'|'text', id, ...}
// Final answers, worker -> page: {type:'result', id, value} or {type:'error', id, error}.

/**
 * Where a model comes from (the worker reads it).
 * @typedef {{kind:'bundled', entry:object} | {kind:'url', url:string, keep?:boolean}
 *   | {kind:'files', files:File[], keep?:boolean} | {kind:'saved', id:string}} ModelSource
 */

/**
 * A failure. `kind`: 'input' (a bad request or option; `field` names it when known), 'model'
 * (a model file is missing, unreadable or unsupported), 'gpu' (no WebGPU, or the GPU failed),
 * 'limits' (it does not fit this GPU), 'cancelled' (cancelled before it ran), 'crashed' (the
 * engine crashed or its worker died: start a new engine).
 * @typedef {{kind:'input'|'model'|'gpu'|'limits'|'cancelled'|'crashed', field:(string|null), message:string}} ErrorInfo
 */

/**
 * @typedef {{type:'progress', id:number, phase:'download'|'parse'|'upload', label:string, file?:string, loaded:number, total:number, rate?:number}} ProgressEvent
 * @typedef {{type:'plan', id:number, summary:string}} PlanEvent          the memory plan, before the weights move
 * @typedef {{type:'unloaded', id:number, name:string}} UnloadedEvent     the model loaded before was freed for the new one
 * @typedef {{type:'warning', id:number, message:string}} WarningEvent      loaded, but e.g. not kept in the browser
 * @typedef {{type:'saved', id:number}} SavedEvent                          the model was kept in the browser's model cache
 * @typedef {{type:'start', id:number, canvas:object}} StartEvent          the initial canvas (masked families)
 * @typedef {{type:'step', id:number, event:object}} StepEvent             one denoising step (StepJs / DgStepJs in Rust)
 * @typedef {{type:'text', id:number, text:string}} TextEvent              answer text that became final (`follow` runs)
 * @typedef {{type:'result', id:number, value:any}} ResultMessage
 * @typedef {{type:'error', id:number, error:ErrorInfo}} ErrorMessage
 */

/**
 * What `load` resolves with.
 * @typedef {{name:string, format:string, bytes:number, plan:string, dg:boolean, config:object, hasTokenizer:boolean, adapter:object, ms:number}} ModelInfo
 * What `plan` resolves with (nothing is loaded).
 * @typedef {{name:string, format:string, dg:boolean, summary:string, fits:boolean, problem:(string|null), total_bytes:number, plan:object}} PlanInfo
 */

export const ERROR_KINDS = ['input', 'model', 'gpu', 'limits', 'cancelled', 'crashed'];

/** @returns {ErrorInfo} */
export function errorInfo(kind, message, field = null) {
  return { kind, field, message };
}

// A structured error (from Rust's `js_err`, or made by errorInfo), as opposed to anything else
// thrown (a wasm trap, a JS bug).
export function isErrorInfo(e) {
  return !!e && typeof e === 'object' && !(e instanceof Error) && typeof e.kind === 'string' && typeof e.message === 'string';
}
