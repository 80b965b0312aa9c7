// The page's DiffusionGemma side (app.js hands over to it while the loaded model has `dg`): the
// settings that apply (the checkpoint's steps per canvas are shown; the mask-based settings hide
// through body.dg and style.css), the request, and a run's steps and end (stats, status, stop
// reason). The run and its drawing are dgview.js's.

import { DgRun, DgView } from './dgview.js';

export class DgPage {
  // `page`: {$, state, onSeek(step), setStatus(text), announce (view.js's Announcer)} from app.js.
  constructor(page) {
    this.page = page;
    const { $ } = page;
    this.view = new DgView({ grid: $('grid'), counter: $('step-counter'), chart: $('chart'), onSeek: page.onSeek });
    // The other families' steps, kept while DiffusionGemma's own are in the field.
    this.maskedSteps = null;
  }

  get on() {
    const m = this.page.state.model;
    return !!(m && m.dg);
  }

  owns(run) {
    return run instanceof DgRun;
  }

  // A model was loaded: DiffusionGemma's steps and settings, or the others' back. (app.js
  // redraws the mode and the settings note after.)
  loaded(model) {
    const { $ } = this.page;
    const dg = !!model.dg;
    document.body.classList.toggle('dg', dg);
    if (dg) {
      this.maskedSteps ??= $('opt-steps').value;
      $('opt-steps').value = model.config.steps;
      $('mode-generate').checked = true; // no infill
    } else if (this.maskedSteps != null) {
      $('opt-steps').value = this.maskedSteps;
      this.maskedSteps = null;
    }
    $('mode-infill').disabled = dg;
  }

  // The settings kept for the next visit: with the other families' steps.
  kept(o) {
    return this.on && this.maskedSteps != null ? { ...o, steps: Number(this.maskedSteps) } : o;
  }

  // The Defaults button: DiffusionGemma's default steps are its checkpoint's.
  reset() {
    if (this.on) this.page.$('opt-steps').value = this.page.state.model.config.steps;
  }

  note(o) {
    const c = this.page.state.model.config;
    const L = c.canvas_length, n = Math.ceil(o.gen_length / L);
    return `${n} canvas(es) of ${L} = ${n * L} tokens · at most ${o.steps} denoising steps each (the model's own: ${c.steps}).`;
  }

  request(o, prompt, chat) {
    return { prompt, chat, gen_length: o.gen_length, seed: o.seed, steps: o.steps };
  }

  // A run begins (there is no start event: the canvas appears with the first step).
  begin(steps) {
    const { $ } = this.page;
    const run = new DgRun(steps, this.page.state.model.config.ends);
    this.view.begin(run);
    $('output').textContent = '';
    $('scrubber').max = 0;
    $('stat-steps').textContent = '0';
    return run;
  }

  step(run, ev, running) {
    const { $ } = this.page;
    run.add(ev);
    this.view.draw(run.lastStep);
    if (running) {
      running.ms += ev.ms;
      $('stat-ms').textContent = `${ev.ms.toFixed(1)} (avg ${(running.ms / run.events.length).toFixed(1)})`;
    }
    $('stat-steps').textContent = `${run.lastStep} · canvas ${ev.canvas + 1}`;
    $('scrubber').max = run.lastStep;
    $('scrubber').value = run.lastStep;
    const k = run.stepOf(ev);
    this.page.announce.quarter(`canvas ${ev.canvas}`, k / run.steps, `Canvas ${ev.canvas + 1}, step ${k} of ${run.steps}`);
  }

  // The end: the text, the stop reason, the stats (a cancelled run has no tokens).
  done(run, result) {
    const { $, setStatus } = this.page;
    run.result = result;
    this.view.draw(run.lastStep);
    const answer = result.tokens ? result.tokens.length - result.gen_start : 0;
    const secs = Math.max((result.ms || 0) / 1000, 1e-6);
    $('output').textContent = result.text || '';
    $('stat-steps').textContent = result.cancelled ? `${run.lastStep}` : `${result.steps} · ${result.canvases} canvas(es)`;
    $('stat-ms').textContent = run.lastStep && result.ms ? (result.ms / run.lastStep).toFixed(1) : '–';
    $('stat-tps').textContent = answer ? (answer / secs).toFixed(1) : '–';
    $('stat-total').textContent = result.cancelled ? 'stopped' : `${secs.toFixed(2)} s · stop: ${result.stop}`;
    setStatus(result.cancelled ? 'Stopped.' : 'Done.');
  }
}
