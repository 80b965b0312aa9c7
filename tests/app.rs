//! The desktop app driven through its widgets with egui_kittest (rendered with wgpu on the
//! engine's own device, lavapipe here): type a prompt, generate, watch the canvas, scrub,
//! remask a word, survive a corrupt model file, and stop with Esc; DiffusionGemma's uniform-state
//! denoising (re-noised cells, the stop reason, the CLI's tokens, Esc); plus the run model's word
//! selection.

mod common;

use eframe::egui::{self, accesskit::Role, Pos2};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::time::{Duration, Instant};
use unmask::app::run::{Run, Start};
use unmask::app::{wgpu_setup, AppOptions, UnmaskApp};

fn demo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/demo-q4_0.gguf")
}

fn harness() -> Harness<'static, UnmaskApp> {
    harness_with(false)
}

/// `tofu`: characters no font has are drawn as boxes (as the app does) instead of failing the
/// test (a random model's tokens include lone UTF-8 bytes).
fn harness_with(tofu: bool) -> Harness<'static, UnmaskApp> {
    let gpu = common::gpu();
    let b = Harness::builder().with_size(egui::Vec2::new(1100.0, 900.0)).wgpu_setup(wgpu_setup(&gpu));
    let b = if tofu { b.allow_missing_glyphs() } else { b };
    b.build_eframe(move |cc| UnmaskApp::new(&cc.egui_ctx, None, gpu, AppOptions { model: Some(demo()), ..Default::default() }))
}

/// Steps the UI until `done` holds (the engine works on its own thread meanwhile).
fn wait(h: &mut Harness<'static, UnmaskApp>, what: &str, done: impl Fn(&UnmaskApp) -> bool) {
    let t0 = Instant::now();
    while !done(h.state()) {
        assert!(t0.elapsed() < Duration::from_secs(300), "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.step();
}

fn click_at(h: &Harness<'static, UnmaskApp>, pos: Pos2) {
    h.event(egui::Event::PointerMoved(pos));
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton { pos, button: egui::PointerButton::Primary, pressed, modifiers: egui::Modifiers::NONE });
    }
}

fn finished(a: &UnmaskApp) -> bool {
    !a.busy && a.run.as_ref().is_some_and(|r| r.result.is_some())
}

/// `unmask generate --json` with `args`.
fn cli_json(args: &[&str]) -> serde_json::Value {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_unmask")).args(["generate", "--json"]).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The CLI's answer for the same prompt and settings.
fn cli_text(prompt: &str) -> String {
    let v = cli_json(&["--model", demo().to_str().unwrap(), "--prompt", prompt, "--steps", "16", "--gen-length", "32", "--block-length", "16"]);
    v["text"].as_str().unwrap().to_string()
}

#[test]
fn the_app_generates_scrubs_remasks_and_survives_a_corrupt_model() {
    let mut h = harness();
    wait(&mut h, "the demo model to load", |a| a.model.is_some());
    assert!(h.state().model_error.is_none(), "{:?}", h.state().model_error);

    // Settings through the state (the widgets are drag values); the prompt typed into its field.
    let o = &mut h.state_mut().settings.options;
    (o.steps, o.gen_length, o.block_length) = (16, 32, 16);
    let prompt = "The capital of France is";
    let field = h.get_by_label("Prompt");
    field.focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Prompt").type_text(prompt);
    h.step();
    assert_eq!(h.state().settings.prompt, prompt);
    h.get_by_role_and_label(Role::Button, "Generate").click();
    wait(&mut h, "the generation", finished);

    // The canvas was drawn live: at least 3 distinct states with masked and committed cells.
    let mixed: std::collections::BTreeSet<Vec<Option<u32>>> =
        h.state().drawn.iter().filter(|f| f.masked > 0 && f.committed > 0).map(|f| f.tokens.clone()).collect();
    assert!(mixed.len() >= 3, "only {} distinct partly-denoised canvases were drawn", mixed.len());
    let answer = h.state().answer().unwrap().to_string();
    assert_eq!(answer, cli_text(prompt), "the app and `unmask generate --json` disagree");
    assert!(h.query_by_label(&answer).is_some(), "the answer text is not shown");

    // Scrub back to step 1 with the Left key: the canvas shows exactly step 1's commits.
    let last = h.state().run.as_ref().unwrap().last_step();
    assert!(last >= 2);
    for _ in 1..last {
        h.key_press(egui::Key::ArrowLeft);
        h.step();
    }
    h.run_steps(2);
    let app = h.state();
    assert_eq!(app.step, 1);
    let f = app.drawn.last().unwrap();
    let run = app.run.as_ref().unwrap();
    assert_eq!((f.step, f.committed), (1, run.events[0].committed.len()));
    assert!(h.query_by_label_contains("step 1 / ").is_some());
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_eq!(h.state().step, 2);
    // Back to the end for the remask.
    for _ in 2..last {
        h.key_press(egui::Key::ArrowRight);
        h.step();
    }
    h.run_steps(2);
    assert_eq!(h.state().step, last);

    // Click a word of the answer, regenerate it: only that span was masked and redone.
    let before = h.state().run.as_ref().unwrap().token.clone();
    let gen_start = h.state().run.as_ref().unwrap().gen_start();
    let p = gen_start + 3;
    let span = h.state().run.as_ref().unwrap().word_at(p);
    let rect = h.state().drawn.last().unwrap().rects[p];
    click_at(&h, rect.center());
    h.run_steps(2);
    let picked: Vec<usize> = h.state().selected.iter().copied().collect();
    assert_eq!(picked, span.clone().collect::<Vec<_>>(), "clicking a cell selects its word");
    h.get_by_role_and_label(Role::Button, "Regenerate selected").click();
    wait(&mut h, "the remask to start", |a| a.busy || a.run.as_ref().is_some_and(|r| r.result.is_none()));
    wait(&mut h, "the remask", finished);
    let run = h.state().run.as_ref().unwrap();
    let masked_at_start: Vec<usize> = (0..run.len()).filter(|&q| run.start.tokens[q] == run.start.mask).collect();
    assert_eq!(masked_at_start, span.clone().collect::<Vec<_>>());
    for (q, &was) in before.iter().enumerate() {
        if !span.contains(&q) {
            assert_eq!(run.token[q], was, "position {q} outside the remasked word changed");
        } else {
            assert!(run.when[q] >= 1 && run.when[q] != usize::MAX, "position {q} was not regenerated");
        }
    }

    // A corrupt model file dropped on the window: an error in the window, the demo model stays.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00garbage that is not a model").unwrap();
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(bad.clone())));
    h.step();
    wait(&mut h, "the corrupt file to be refused", |a| a.loading.is_none() && a.model_error.is_some());
    let err = h.state().model_error.clone().unwrap();
    assert!(err.contains("broken.gguf") && err.contains("still using demo-q4_0.gguf"), "{err}");
    assert!(h.query_by_label_contains("could not open").is_some(), "the error is not shown in the window");
    h.get_by_role_and_label(Role::Button, "Generate").click();
    wait(&mut h, "a generation after the failed load", |a| a.busy);
    wait(&mut h, "the generation after the failed load", finished);
    assert_eq!(h.state().answer().unwrap(), answer, "the previous model no longer answers the same");

    // Infill mode: the masked span is filled, the text around it kept.
    h.get_by_role_and_label(Role::RadioButton, "Infill").click();
    h.step();
    let field = h.get_by_label("Prompt");
    field.focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Prompt").type_text("Once upon a time there was a <mask:3> who lived in a house.");
    h.step();
    h.get_by_role_and_label(Role::Button, "Generate").click();
    wait(&mut h, "the infill to start", |a| a.busy);
    wait(&mut h, "the infill", finished);
    let run = h.state().run.as_ref().unwrap();
    assert_eq!((run.gen_start(), run.masked_at(0)), (0, 3), "an infill canvas is the whole text with 3 masks");
    let text = h.state().answer().unwrap();
    assert!(text.starts_with("Once upon a time there was a") && text.ends_with("who lived in a house."), "{text:?}");
    h.get_by_role_and_label(Role::RadioButton, "Generate").click();
    h.step();

    // Esc stops a running generation after its current step (a long run, so that it cannot end first).
    let o = &mut h.state_mut().settings.options;
    (o.steps, o.gen_length, o.block_length) = (128, 128, 32);
    h.get_by_role_and_label(Role::Button, "Generate").click();
    wait(&mut h, "the first step", |a| a.busy && a.run.as_ref().is_some_and(|r| r.result.is_none() && !r.events.is_empty()));
    h.key_press(egui::Key::Escape);
    wait(&mut h, "the stopped generation", finished);
    let r = h.state().run.as_ref().unwrap().result.clone().unwrap();
    assert!(r.cancelled && r.steps < 128, "Esc did not stop the run: {} steps, cancelled {}", r.steps, r.cancelled);
    assert!(h.query_by_label_contains("(stopped)").is_some());

    // Other families: llama.cpp GGUFs of a Dream and a MoE fixture, and our GGUF of LLaDA 2
    // (`unmask convert`; llama.cpp has none), load, the bar names the family, and they answer.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families");
    let tmp = tempfile::tempdir().unwrap();
    let llada2 = tmp.path().join("llada2.gguf");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_unmask")).arg("convert").arg(fixtures.join("llada2")).arg("--out").arg(&llada2).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (fixture, shown) in
        [("dream", "dream · 2 layers"), ("llada_moe", "llada-moe · 2 layers · 8 experts, top-2"), ("llada2", "llada2 · 3 layers · 8 experts, top-2")]
    {
        let file = if fixture == "llada2" { llada2.clone() } else { fixtures.join(fixture).join("model.gguf") };
        // LLaDA 2's sampler blocks are its attention's 32.
        let b = if fixture == "llada2" { 32 } else { 8 };
        let o = &mut h.state_mut().settings.options;
        (o.steps, o.gen_length, o.block_length) = (b, b, b);
        h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(file.clone())));
        h.step();
        wait(&mut h, "the fixture to load", |a| {
            a.loading.is_none() && (a.model.as_ref().is_some_and(|m| m.path == file) || a.model_error.as_ref().is_some_and(|e| e.contains(fixture)))
        });
        assert!(h.state().model.as_ref().is_some_and(|m| m.path == file), "{fixture}: {:?}", h.state().model_error);
        assert!(h.query_by_label_contains(shown).is_some(), "the model bar does not say {shown:?}");
        h.get_by_role_and_label(Role::Button, "Generate").click();
        wait(&mut h, "the fixture's generation to start", |a| a.busy);
        wait(&mut h, "the fixture's generation", finished);
        let run = h.state().run.as_ref().unwrap();
        assert_eq!(run.masked_at(run.result.as_ref().unwrap().steps), 0, "{fixture}: every mask filled");
    }
}

#[test]
fn the_app_runs_diffusion_gemma_as_the_cli_does() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/diffusion_gemma");
    let mut h = harness_with(true);
    wait(&mut h, "the demo model to load", |a| a.model.is_some());
    // The Hub folder dropped on the window, as the other fixtures are.
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(fixture.clone())));
    h.step();
    wait(&mut h, "DiffusionGemma to load", |a| a.loading.is_none() && (a.model.as_ref().is_some_and(|m| m.path == fixture) || a.model_error.is_some()));
    assert!(h.state().model.as_ref().is_some_and(|m| m.path == fixture), "{:?}", h.state().model_error);
    assert!(h.query_by_label_contains("diffusion-gemma · 4 layers · 4 experts, top-2 · canvas 16").is_some(), "the model bar does not name the family");
    assert!(h.query_by_label_contains("do not apply").is_some(), "no note on the settings that do not apply");

    let s = &mut h.state_mut().settings;
    s.prompt = "The cat sat".into();
    (s.options.gen_length, s.options.seed) = (20, 1);
    h.step();
    h.get_by_role_and_label(Role::Button, "Generate").click();
    wait(&mut h, "the generation to start", |a| a.busy);
    wait(&mut h, "the generation", finished);
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    let f = app.run.as_ref().unwrap().result.clone().unwrap();
    let cli = cli_json(&["--model", fixture.to_str().unwrap(), "--prompt", "The cat sat", "--gen-length", "20", "--seed", "1"]);
    let want: Vec<u32> = serde_json::from_value(cli["tokens"].clone()).unwrap();
    assert_eq!(f.tokens[f.gen_start..], want[..], "the app and `unmask generate --json` disagree");
    assert_eq!(f.steps, cli["steps"].as_array().unwrap().len());
    // Every step redrew the canvas's cells, some re-noised; the finish says why it stopped.
    let run = app.run.as_ref().unwrap();
    assert!(run.events.iter().all(|e| e.committed.len() == 16), "a step did not carry its whole canvas");
    // Scrubbed to step 1: the first canvas drawn, the second still empty; at the end, the answer
    // (it stopped on length: no EOS padding).
    let (g, at1) = (f.gen_start, run.tokens_at(1));
    assert!(at1[..g + 16].iter().all(Option::is_some) && at1[g + 16..].iter().all(Option::is_none));
    let end: Vec<u32> = run.tokens_at(run.last_step())[g..].iter().map(|t| t.unwrap()).collect();
    assert_eq!(end, want, "the last step's canvases are not the answer");
    assert!(app.drawn.iter().any(|d| d.renoised > 0 && d.committed > 0), "no step showed re-noised cells beside accepted ones");
    let stop = cli["stop"].as_str().unwrap();
    assert_eq!(f.stop.as_deref(), Some(stop));
    assert!(h.query_by_label_contains(&format!("stop: {stop}")).is_some(), "the stop reason is not shown");
    assert!(h.query_by_label(&f.text).is_some(), "the answer text is not shown");

    // Esc stops it after a step: a cancelled finish with what the canvases held, no error.
    h.state_mut().settings.options.gen_length = 112;
    h.get_by_role_and_label(Role::Button, "Generate").click();
    wait(&mut h, "the first step", |a| a.busy && a.run.as_ref().is_some_and(|r| r.result.is_none() && !r.events.is_empty()));
    h.key_press(egui::Key::Escape);
    wait(&mut h, "the stopped generation", finished);
    let r = h.state().run.as_ref().unwrap().result.clone().unwrap();
    assert!(h.state().error.is_none() && r.cancelled && r.steps < 70 && r.stop.is_none(), "{:?}: {} steps", h.state().error, r.steps);
}

/// A file dropped onto the window.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn start(pieces: &[&str], gen_start: usize) -> Start {
    let tokens: Vec<u32> = (0..pieces.len() as u32).collect();
    Start { tokens, pieces: pieces.iter().map(|s| s.to_string()).collect(), gen_start, mask: 999, block_length: 4, steps: 4, ends: vec![] }
}

#[test]
fn a_word_is_the_tokens_up_to_the_next_leading_space() {
    let run = Run::new(start(&["Q", ":", " un", "mask", "ing", " is", " ", "fun", "\n"], 2));
    assert_eq!(run.word_at(3), 2..=4);
    assert_eq!(run.word_at(2), 2..=4);
    assert_eq!(run.word_at(5), 5..=5);
    assert_eq!(run.word_at(6), 6..=6, "a whitespace token is its own word");
    assert_eq!(run.word_at(7), 7..=7);
    // Never reaches back into the prompt.
    let run = Run::new(start(&["a", "b", "c", "d"], 2));
    assert_eq!(run.word_at(2), 2..=3);
}
