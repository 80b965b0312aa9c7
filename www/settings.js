// The sampler settings form: its values from the engine's defaults (the wasm's `defaults()`,
// through the engine API), reading and writing the controls, the options a request sends, and
// the one-line note under them (the engine's own verdict on the settings, or what they mean).

export const SETTINGS_KEY = 'unmask-settings-v1';

const numeric = ['steps', 'gen_length', 'block_length', 'temperature', 'cfg_scale', 'seed', 'span_length'];

// The form's values from `engine.defaults` ({options, span_length, …}).
export function formDefaults(d) {
  const o = d.options;
  return { steps: o.steps, gen_length: o.gen_length, block_length: o.block_length, temperature: o.temperature, cfg_scale: o.cfg_scale, remasking: o.remasking, cache: o.cache, threshold: o.threshold, seed: o.seed, early_stop: o.early_stop, span_length: d.span_length };
}

// `$` finds a control by id.
export function readSettings($) {
  const o = {};
  for (const k of numeric) o[k] = Number($(`opt-${k}`).value);
  o.remasking = $('opt-remasking').value;
  o.cache = $('opt-cache').value;
  o.threshold = $('opt-threshold-on').checked ? Number($('opt-threshold').value) : null;
  o.early_stop = $('opt-early_stop').checked;
  return o;
}

// `o`: a whole set of values (formDefaults, with saved ones over them).
export function writeSettings($, o) {
  for (const k of numeric) if (o[k] !== undefined) $(`opt-${k}`).value = o[k];
  $('opt-remasking').value = o.remasking;
  $('opt-cache').value = o.cache;
  $('opt-threshold-on').checked = o.threshold != null;
  $('opt-threshold').disabled = o.threshold == null;
  if (o.threshold != null) $('opt-threshold').value = o.threshold;
  $('opt-early_stop').checked = o.early_stop !== false;
}

// The sampler options of a request from the form's values (span length is the infill's own).
export function samplerOptions(o) {
  const { steps, gen_length, block_length, temperature, cfg_scale, remasking, cache, threshold, seed, early_stop } = o;
  return { steps, gen_length, block_length, temperature, cfg_scale, remasking, cache, threshold, seed, early_stop };
}

// The engine's messages name its options (gen_length 10); here they are settings (gen length).
export function forPage(message) {
  return message.replace(/\b(?:gen_length|block_length|span_length|cfg_scale|early_stop)\b/g, (w) => w.replace('_', ' '));
}

// `problem`: what `engine.validate` said of the options (null: fine).
export function settingsNote(o, infill, problem) {
  if (problem) return forPage(problem.message);
  if (infill) return 'Infill: the whole text is one block; steps are capped at the number of masks.';
  const blocks = o.gen_length / o.block_length;
  return `${blocks} block(s) · ${o.steps / blocks} steps each · ~${(o.gen_length / o.steps).toFixed(1)} tokens per step${o.cfg_scale > 0 ? ' · CFG doubles the work per step' : ''}`;
}
