// The denoising view: one cell per canvas position, drawn at any step of a run (live or replayed
// with the scrubber), the per-step chart, and the selection of answer cells to remask.
// A run is its initial canvas plus the step events; the canvas at step s is the initial one
// with every commit of steps 1..s applied. The grid is a listbox of cells for assistive
// technology and the keyboard (one tab stop, arrow keys, Enter/Space to select; `GridKeys`,
// shared with dgview.js), each cell labelled with its text and state; `Announcer` is the page's
// polite live region for progress.

const SVG = 'http://www.w3.org/2000/svg';

export function confidenceClass(c) {
  return c < 0.3 ? 'lo' : c < 0.7 ? 'mid' : 'hi';
}

// What an end-of-text (padding) cell shows instead of `<|endoftext|>` and kin.
export const PADDING = '∅';

// How a token's text is shown in its cell: whitespace made visible.
export function cellText(piece) {
  if (piece === '') return '∅';
  if (/^\s+$/.test(piece)) return piece.replace(/\n/g, '⏎').replace(/\t/g, '⇥').replace(/ /g, '␣');
  return piece.replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

// How a token's text is read out in a cell's label: whitespace named, the rest quoted.
export function spoken(piece) {
  if (!piece) return 'empty';
  if (/^\s+$/.test(piece)) return [...piece].map((c) => (c === '\n' ? 'newline' : c === '\t' ? 'tab' : 'space')).join(' ');
  return `${/^\s/.test(piece) ? 'space, ' : ''}“${piece.trim()}”`;
}

// Sets an attribute only when it changes (cells are redrawn at every step).
export function setAttr(el, name, value) {
  if (value == null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

// A new grid cell: an option of the grid's listbox, out of the tab order (`GridKeys.stop` keeps
// one cell in it).
export function newCell(p) {
  const el = document.createElement('span');
  el.className = 'cell';
  el.dataset.pos = p;
  el.setAttribute('role', 'option');
  el.tabIndex = -1;
  return el;
}

// Keyboard access to the grid's cells: one tab stop (a roving tabindex), arrow keys move it (Up
// and Down by visual line), Home/End to the ends, Enter/Space call `onToggle(pos, oneToken)`.
export class GridKeys {
  constructor(grid, onToggle) {
    this.grid = grid;
    grid.addEventListener('keydown', (e) => this.key(e, onToggle));
    grid.addEventListener('focusin', (e) => { if (e.target.classList.contains('cell')) this.stop(e.target); });
  }

  cells() {
    return Array.from(this.grid.children).filter((c) => c.classList.contains('cell'));
  }

  // Makes `el` (or, without it, the cell already there, else the first) the grid's one tab stop.
  stop(el) {
    const cells = this.cells();
    const now = cells.filter((c) => c.tabIndex === 0);
    el ??= now[0] || cells[0];
    for (const c of now) if (c !== el) c.tabIndex = -1;
    if (el) el.tabIndex = 0;
  }

  key(e, onToggle) {
    const el = e.target.closest && e.target.closest('.cell');
    if (!el || e.ctrlKey || e.metaKey || e.altKey) return;
    const cells = this.cells();
    const i = cells.indexOf(el);
    let j = null;
    if (e.key === 'ArrowRight') j = i + 1;
    else if (e.key === 'ArrowLeft') j = i - 1;
    else if (e.key === 'ArrowDown') j = lineMove(cells, i, 1);
    else if (e.key === 'ArrowUp') j = lineMove(cells, i, -1);
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = cells.length - 1;
    else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onToggle(Number(el.dataset.pos), e.shiftKey);
      return;
    } else return;
    e.preventDefault();
    const to = cells[Math.max(0, Math.min(cells.length - 1, j))];
    this.stop(to);
    to.focus();
  }
}

// The cell on the next visual line (dir 1) or the previous one (-1) nearest `i` horizontally.
function lineMove(cells, i, dir) {
  const mid = (r) => [r.left + r.width / 2, r.top + r.height / 2];
  const r = cells[i].getBoundingClientRect();
  const [x, y] = mid(r);
  let best = i, line = null, dx = Infinity;
  for (let j = i + dir; j >= 0 && j < cells.length; j += dir) {
    const q = cells[j].getBoundingClientRect();
    const [qx, qy] = mid(q);
    if (Math.abs(qy - y) < r.height / 2) continue; // still on this line
    if (line === null) line = qy;
    else if (Math.abs(qy - line) >= q.height / 2) break; // past the next line
    if (Math.abs(qx - x) < dx) [best, dx] = [j, Math.abs(qx - x)];
  }
  return best;
}

// The page's polite live region: progress said at most once per quarter of a phase (the
// quarter's key), and the ends.
export class Announcer {
  constructor(el) {
    this.el = el;
    this.last = null;
  }
  say(text) {
    this.last = null;
    this.el.textContent = text;
  }
  // Says `text` when `frac` (0–1) of phase `key` has entered another quarter.
  quarter(key, frac, text) {
    const k = `${key}:${Math.floor(4 * Math.min(1, Math.max(0, frac)))}`;
    if (k === this.last) return;
    this.last = k;
    this.el.textContent = text;
  }
}

export class Run {
  // `start` is the engine's onStart canvas: {tokens, pieces, gen_start, mask, block_length, steps}.
  constructor(start) {
    this.start = start;
    // Tokens that end the answer (the start event's `ends`): drawn as the dim `PADDING`.
    this.ends = new Set(start.ends || []);
    const n = start.tokens.length;
    this.n = n;
    this.events = [];
    // Per position: the step that committed it (Infinity: masked so far; 0: given), its token,
    // text and confidence.
    this.when = new Float64Array(n).fill(Infinity);
    this.token = Uint32Array.from(start.tokens);
    this.piece = start.pieces.slice();
    this.conf = new Float32Array(n);
    for (let p = 0; p < n; p++) if (start.tokens[p] !== start.mask) this.when[p] = 0;
    this.result = null;
  }
  get genStart() { return this.start.gen_start; }
  get lastStep() { return this.events.length ? this.events[this.events.length - 1].step : 0; }
  add(ev) {
    this.events.push(ev);
    for (const c of ev.committed) {
      this.when[c.pos] = ev.step;
      this.token[c.pos] = c.token;
      this.piece[c.pos] = c.text;
      this.conf[c.pos] = c.confidence;
    }
  }
}

export class View {
  constructor({ grid, counter, chart, onSeek, onSelect }) {
    this.grid = grid;
    this.counter = counter;
    this.chart = chart;
    this.onSeek = onSeek;
    this.onSelect = onSelect;
    this.keys = new GridKeys(grid, (p, one) => this.toggle(p, one));
    this.run = null;
    this.cells = [];
    this.step = 0;
    this.selected = new Set();
    this.selectable = false;
    // What was drawn, step by step (read by the browser tests and handy when debugging); with
    // `recordDom`, each frame also keeps every cell's class and text.
    this.drawn = [];
    this.recordDom = false;
    grid.addEventListener('click', (e) => this.click(e));
    let dragging = false;
    const seek = (e) => {
      if (!this.run || !this.run.events.length) return;
      const r = chart.getBoundingClientRect();
      const steps = this.run.lastStep;
      const s = Math.round(((e.clientX - r.left) / r.width) * steps + 0.5);
      this.onSeek(Math.max(0, Math.min(steps, s)));
    };
    chart.addEventListener('pointerdown', (e) => { dragging = true; chart.setPointerCapture(e.pointerId); seek(e); });
    chart.addEventListener('pointermove', (e) => dragging && seek(e));
    chart.addEventListener('pointerup', () => { dragging = false; });
  }

  // A new run: builds one cell per position.
  begin(run) {
    this.run = run;
    this.selected.clear();
    this.selectable = false;
    this.drawn = [];
    const { gen_start: g, block_length: bl } = run.start;
    const frag = document.createDocumentFragment();
    this.cells = [];
    for (let p = 0; p < run.n; p++) {
      const el = newCell(p);
      if (p >= g && bl > 0 && (p - g) % bl === 0) el.classList.add(p === g && g > 0 ? 'answer-start' : 'block-start');
      frag.append(el);
      this.cells.push(el);
    }
    this.grid.replaceChildren(frag);
    this.keys.stop(this.cells[g] || this.cells[0]); // Tab lands on the answer
    this.draw(0);
  }

  // DiffusionGemma's view (dgview.js) takes the grid: forget the run.
  detach() {
    this.run = null;
    this.selected.clear();
    this.selectable = false;
  }

  // Draws the canvas as it was after `step` (0: the initial canvas).
  draw(step) {
    const run = this.run;
    if (!run) return;
    this.step = step;
    let masked = 0;
    for (let p = 0; p < run.n; p++) {
      const el = this.cells[p];
      const w = run.when[p];
      const pad = w <= step && p >= run.genStart && run.ends.has(run.token[p]);
      const what = pad ? 'end of text (padding)' : spoken(run.piece[p]);
      let cls, text = '', title = '', label, conf = null;
      if (w === 0) {
        cls = p < run.genStart ? 'given prompt' : 'given';
        text = cellText(run.piece[p]);
        label = `${what}, ${p < run.genStart ? 'prompt' : 'given'}`;
        if (pad) title = `end of text · token ${run.token[p]}`;
      } else if (w > step) {
        cls = 'masked';
        masked++;
        label = 'masked';
      } else {
        const c = run.conf[p];
        conf = c.toFixed(3);
        cls = w === step ? `fresh ${confidenceClass(c)}` : 'done';
        text = cellText(run.piece[p]);
        title = `${pad ? 'end of text · ' : ''}step ${w} · confidence ${conf} · token ${run.token[p]}`;
        label = `${what}, committed at step ${w}, confidence ${Math.round(100 * c)}%`;
      }
      if (pad) {
        cls += ' pad';
        text = PADDING;
      }
      if (/^[␣⏎⇥]+$/.test(text)) cls += ' ws';
      const keep = el.className.split(' ').filter((k) => k === 'block-start' || k === 'answer-start');
      if (this.selectable && p >= run.genStart && w !== Infinity && w <= step) keep.push('selectable');
      if (this.selected.has(p)) keep.push('selected');
      const next = ['cell', ...cls.split(' '), ...keep].join(' ');
      if (el.className !== next) el.className = next;
      if (el.textContent !== text) el.textContent = text;
      if (el.title !== title) el.title = title;
      setAttr(el, 'aria-label', label);
      setAttr(el, 'aria-selected', keep.includes('selectable') || this.selected.has(p) ? String(this.selected.has(p)) : null);
      if (el.style.getPropertyValue('--conf') !== (conf ?? '')) conf == null ? el.style.removeProperty('--conf') : el.style.setProperty('--conf', conf);
    }
    const total = run.start.steps;
    const ev = run.events.find((e) => e.step === step);
    this.counter.textContent = `step ${step} / ${total} · ${masked} masked${ev && ev.early_stop ? ' · rest is padding (early stop)' : ''}`;
    this.grid.dataset.step = step;
    const frame = { step, masked, tokens: Array.from(run.token, (t, p) => (run.when[p] > step ? -1 : t)).join(',') };
    if (this.recordDom) frame.dom = this.cells.map((c) => `${c.className}|${c.textContent}`).join('\n');
    this.drawn.push(frame);
    if (this.drawn.length > 4000) this.drawn.splice(0, 2000);
    this.drawChart();
  }

  drawChart() {
    const run = this.run;
    const svg = this.chart;
    const evs = run ? run.events : [];
    const W = 600, H = 110, pad = 6;
    const parts = [];
    if (evs.length) {
      // While a run is live the x axis spans every planned step; afterwards the steps taken.
      const n = run.result ? evs.length : Math.max(evs.length, run.start.steps);
      const bw = (W - 2 * pad) / n;
      const maxC = Math.max(1, ...evs.map((e) => e.committed.length));
      let line = '';
      evs.forEach((e, i) => {
        const x = pad + i * bw;
        const h = ((H - 2 * pad) * e.committed.length) / maxC;
        parts.push(`<rect class="bar${e.step === this.step ? ' now' : ''}" x="${x + bw * 0.12}" y="${H - pad - h}" width="${Math.max(bw * 0.76, 0.5)}" height="${h}"><title>step ${e.step}: ${e.committed.length} committed, mean confidence ${mean(e).toFixed(3)}, ${e.ms.toFixed(1)} ms</title></rect>`);
        if (i > 0 && e.block !== evs[i - 1].block) parts.push(`<line class="block" x1="${x}" x2="${x}" y1="${pad}" y2="${H - pad}"/>`);
        if (e.committed.length) line += `${line ? 'L' : 'M'}${x + bw / 2},${H - pad - (H - 2 * pad) * mean(e)} `;
      });
      if (line) parts.push(`<path class="conf" d="${line}"/>`);
      if (this.step > 0) {
        const x = pad + (Math.min(this.step, n) - 0.5) * bw;
        parts.push(`<line class="cursor" x1="${x}" x2="${x}" y1="0" y2="${H}"/>`);
      }
    }
    svg.innerHTML = parts.join('');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  }

  setSelectable(on) {
    this.selectable = on;
    if (!on) this.selected.clear();
    if (this.run) this.draw(this.step);
  }

  // Clicking a committed answer cell selects its whole word (the run of tokens up to the next
  // one that starts with whitespace); with Alt or Shift, just that token.
  click(e) {
    const el = e.target.closest('.cell');
    if (el) this.toggle(Number(el.dataset.pos), e.altKey || e.shiftKey);
  }

  // Selects or unselects the word at `p` (with `oneToken`, just that token): the click's and the
  // keyboard's (Enter/Space) action.
  toggle(p, oneToken) {
    const el = this.cells[p];
    if (!el || !this.selectable || !this.run || !el.classList.contains('selectable')) return;
    const span = oneToken ? [p] : this.wordAt(p);
    const on = !this.selected.has(p);
    for (const q of span) on ? this.selected.add(q) : this.selected.delete(q);
    this.draw(this.step);
    this.onSelect(this.selected.size);
  }

  wordAt(p) {
    const run = this.run;
    const piece = (q) => run.piece[q] || '';
    const isSpace = (q) => /^\s+$/.test(piece(q));
    if (isSpace(p)) return [p];
    const startsWord = (q) => /^\s/.test(piece(q)) || isSpace(q - 1);
    let a = p;
    while (a > run.genStart && !startsWord(a) && !isSpace(a - 1)) a--;
    let b = p;
    while (b + 1 < run.n && !startsWord(b + 1) && !isSpace(b + 1)) b++;
    const out = [];
    for (let q = a; q <= b; q++) out.push(q);
    return out;
  }
}

function mean(e) {
  return e.committed.length ? e.committed.reduce((s, c) => s + c.confidence, 0) / e.committed.length : 0;
}
