// The sampler settings form: defaults, reading and writing the controls, and the one-line hint
// under them for settings the engine would refuse (it says the same, but sooner is nicer).

export const DEFAULTS = { steps: 64, gen_length: 64, block_length: 32, temperature: 0, cfg_scale: 0, remasking: 'low_confidence', cache: 'dual', threshold: null, seed: 0, early_stop: true, span_length: 4 };
export const SETTINGS_KEY = 'unmask-settings-v1';

const numeric = ['steps', 'gen_length', 'block_length', 'temperature', 'cfg_scale', 'seed', 'span_length'];

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

export function writeSettings($, o) {
  for (const k of numeric) if (o[k] !== undefined) $(`opt-${k}`).value = o[k];
  $('opt-remasking').value = o.remasking || DEFAULTS.remasking;
  $('opt-cache').value = o.cache || DEFAULTS.cache;
  $('opt-threshold-on').checked = o.threshold != null;
  $('opt-threshold').disabled = o.threshold == null;
  if (o.threshold != null) $('opt-threshold').value = o.threshold;
  $('opt-early_stop').checked = o.early_stop !== false;
}

export function settingsNote(o, infill) {
  if (infill) return 'Infill: the whole text is one block; steps are capped at the number of masks.';
  if (o.gen_length % o.block_length) return `Gen length ${o.gen_length} is not a multiple of block length ${o.block_length}.`;
  const blocks = o.gen_length / o.block_length;
  if (o.steps % blocks) return `Steps must be a multiple of the number of blocks (${blocks}).`;
  return `${blocks} block(s) · ${o.steps / blocks} steps each · ~${(o.gen_length / o.steps).toFixed(1)} tokens per step${o.cfg_scale > 0 ? ' · CFG doubles the work per step' : ''}`;
}
