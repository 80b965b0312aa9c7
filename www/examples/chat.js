// The engine API's minimal example (chat.html): create the engine, load the bundled demo model,
// then stream chat answers into a <pre> as their text becomes final. It asks its first question
// by itself; `window.example` keeps the chunks, their arrival, and the engine for the API test.

import { createEngine, bundledModel } from '../unmask.js';

const $ = (id) => document.getElementById(id);
// Blocks of 16 over a 64-token answer: the text streams in several pieces.
const SETTINGS = { max_tokens: 64, block_length: 16, steps: 32, temperature: 0, seed: 0 };
const example = (window.example = { engine: null, settings: SETTINGS, chunks: [], steps: 0, answered: 0, error: null });

async function ask(engine, question) {
  $('send').disabled = true;
  $('stop').disabled = false;
  $('answer').textContent = '';
  example.chunks = [];
  example.steps = 0;
  try {
    const stream = await engine.chat.completions.create({
      messages: [{ role: 'user', content: question }],
      stream: true,
      ...SETTINGS,
      onStep: () => example.steps++,
    });
    for await (const chunk of stream) {
      example.chunks.push({ chunk, steps: example.steps });
      $('answer').textContent += chunk.choices[0].delta.content ?? '';
    }
    $('status').textContent = 'Done.';
  } catch (e) {
    example.error = { kind: e.kind, field: e.field, message: e.message };
    $('status').textContent = e.kind === 'cancelled' ? 'Stopped.' : `Error: ${e.message}`;
  }
  example.answered++;
  $('send').disabled = false;
  $('stop').disabled = true;
}

async function main() {
  try {
    const engine = await createEngine({ worker: true });
    example.engine = engine;
    $('status').textContent = `Loading the demo model on ${engine.adapter.name}…`;
    const model = await bundledModel();
    if (!model) throw new Error('this page has no bundled model (build it with ./build.sh web)');
    await engine.load(model, { onProgress: (p) => { $('status').textContent = `${p.label}…`; } });
    $('status').textContent = `${engine.model.name} is ready.`;
    $('ask').onsubmit = (e) => { e.preventDefault(); ask(engine, $('question').value); };
    $('stop').onclick = () => engine.cancel();
    await ask(engine, $('question').value);
  } catch (e) {
    example.error = { kind: e.kind, field: e.field, message: e.message };
    $('status').textContent = `Error: ${e.message}`;
  }
}

main();
