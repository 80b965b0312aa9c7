//! The window: the model bar (open, recent, plan, progress), the prompt and its buttons, the
//! canvas with the scrubber and the chart, the answer text, and the settings and stats panel;
//! plus keys (Ctrl+Enter, Esc, Left/Right), dropped files and the `--screenshot` run.

use super::canvas;
use super::settings::Mode;
use super::state::UnmaskApp;
use crate::engine::human;
use crate::sampler::{CacheMode, Remasking};
use eframe::egui::{self, Key, Modifiers, RichText};

impl eframe::App for UnmaskApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.poll();
        self.poll_dialog();
        self.keys(&ctx);
        for f in ctx.input(|i| i.raw.dropped_files.clone()) {
            self.open_model(f.path());
        }
        if self.tick(ctx.input(|i| i.time)) {
            ctx.request_repaint();
        }
        egui::Panel::top("model").show(ui, |ui| self.model_bar(ui));
        egui::Panel::right("settings").resizable(true).default_size(250.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                self.settings_ui(ui);
                ui.separator();
                self.stats_ui(ui);
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| self.main_ui(ui));
        });
        self.screenshot(&ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

impl UnmaskApp {
    fn keys(&mut self, ctx: &egui::Context) {
        if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Enter)) {
            self.generate();
        }
        if self.busy && ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape)) {
            self.cancel();
        }
        // Arrows scrub unless a text field has the keyboard.
        if !ctx.egui_wants_keyboard_input() {
            if ctx.input(|i| i.key_pressed(Key::ArrowLeft)) {
                self.seek(self.step.saturating_sub(1));
            }
            if ctx.input(|i| i.key_pressed(Key::ArrowRight)) {
                self.seek(self.step + 1);
            }
        }
    }

    fn model_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("Unmask");
            ui.separator();
            match &self.model {
                Some(m) => {
                    ui.label(RichText::new(&m.name).strong()).on_hover_text(m.path.display().to_string());
                    ui.label(family_text(&m.config))
                }
                None => ui.label("No model loaded."),
            };
            ui.separator();
            let idle = self.loading.is_none() && self.dialog.is_none();
            if ui.add_enabled(idle, egui::Button::new("Open model…")).on_hover_text("A .gguf file (llama.cpp's or `unmask convert`'s)").clicked() {
                self.pick(false, ui.ctx());
            }
            if ui
                .add_enabled(idle, egui::Button::new("Open folder…"))
                .on_hover_text("A Hugging Face folder: config.json, *.safetensors, tokenizer.json")
                .clicked()
            {
                self.pick(true, ui.ctx());
            }
            if ui.add_enabled(idle, egui::Button::new("Demo model")).clicked() {
                match crate::load::resolve(None) {
                    Ok(p) => self.open_model(&p),
                    Err(e) => self.model_error = Some(e.to_string()),
                }
            }
            ui.add_enabled_ui(idle && !self.settings.recent.is_empty(), |ui| {
                ui.menu_button("Recent", |ui| {
                    for p in self.settings.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.open_model(&p);
                        }
                    }
                });
            });
            let l = ui.label("Load weights");
            egui::ComboBox::from_id_salt("quant")
                .selected_text(match self.settings.quant.as_str() {
                    "" => "weights as stored",
                    q => q,
                })
                .show_ui(ui, |ui| {
                    for (v, label) in [
                        ("", "as stored in the file"),
                        ("q8_0", "Q8_0 (8.5 bits)"),
                        ("q4_0", "Q4_0 (embedding and head Q8_0)"),
                        ("q4_0_pure", "Q4_0 everywhere"),
                    ] {
                        ui.selectable_value(&mut self.settings.quant, v.to_string(), label);
                    }
                })
                .response
                .labelled_by(l.id)
                .on_hover_text("How the next model opened is stored on the GPU");
        });
        if let Some(l) = &self.loading {
            ui.label(format!("Loading {} …", l.path.display()));
            if let Some(plan) = &l.plan {
                ui.small(format!("Memory plan: {plan}"));
            }
            let f = if l.total == 0 { 0.0 } else { l.done as f32 / l.total as f32 };
            ui.add(egui::ProgressBar::new(f).show_percentage().text(format!("{} of {}", human(l.done), human(l.total))));
        } else if let Some(m) = &self.model {
            ui.small(format!("Memory plan: {}", m.plan));
        }
        if let Some(e) = &self.model_error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if let Some(n) = &self.notice {
            ui.small(n);
        }
        ui.add_space(2.0);
    }

    fn main_ui(&mut self, ui: &mut egui::Ui) {
        let label = ui.horizontal(|ui| {
            let l = ui.label(RichText::new("Prompt").strong());
            ui.radio_value(&mut self.settings.mode, Mode::Generate, "Generate");
            ui.radio_value(&mut self.settings.mode, Mode::Infill, "Infill");
            if self.settings.mode == Mode::Generate {
                ui.checkbox(&mut self.settings.chat, "Chat template");
            }
            l.id
        });
        let hint = match self.settings.mode {
            Mode::Generate => "Write a prompt…",
            Mode::Infill => "Text with [MASK] or <mask:N> spans to fill…",
        };
        ui.add(egui::TextEdit::multiline(&mut self.settings.prompt).hint_text(hint).desired_rows(3).desired_width(f32::INFINITY).id_salt("prompt"))
            .labelled_by(label.inner);
        ui.small(match self.settings.mode {
            Mode::Generate => {
                "The model writes an answer of gen length tokens after the prompt, unmasking a few positions per step. Ctrl+Enter generates, Esc stops."
            }
            Mode::Infill => "Each [MASK] becomes span-length masks, <mask:N> N masks; the model fills them all as one block.",
        });
        ui.horizontal(|ui| {
            if ui.add_enabled(self.can_generate(), egui::Button::new(RichText::new("Generate").strong())).clicked() {
                self.generate();
            }
            if ui.add_enabled(self.busy, egui::Button::new("Stop")).clicked() {
                self.cancel();
            }
            ui.separator();
            let can_remask = self.selectable() && !self.selected.is_empty() && self.can_generate();
            if ui
                .add_enabled(can_remask, egui::Button::new("Regenerate selected"))
                .on_hover_text("Click words of the answer to select them, then regenerate only those")
                .clicked()
            {
                self.remask();
            }
            if ui.add_enabled(!self.selected.is_empty(), egui::Button::new("Clear selection")).clicked() {
                self.selected.clear();
            }
            if ui.add_enabled(self.answer().is_some(), egui::Button::new("Copy answer")).clicked() {
                ui.ctx().copy_text(self.answer().unwrap_or_default().to_string());
            }
            if self.busy {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.separator();
        self.canvas_ui(ui);
    }

    fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        let Some(run) = &self.run else {
            ui.label(RichText::new("The canvas appears here: every position starts masked and is committed step by step.").weak());
            return;
        };
        let ev = run.events.iter().find(|e| e.step == self.step);
        let planned = run.start.steps.max(run.last_step());
        let early = if ev.is_some_and(|e| e.early_stop) { " · rest is padding (early stop)" } else { "" };
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("step {} / {planned} · {} masked{early}", self.step, run.masked_at(self.step))).monospace());
            ui.add_space(12.0);
            legend(ui);
        });
        let (clicked, frame) = canvas::canvas(ui, run, self.step, &self.selected, self.selectable());
        if self.drawn.last() != Some(&frame) {
            self.drawn.push(frame);
        }
        let last = run.last_step();
        if let Some((p, single)) = clicked {
            self.toggle(p, single);
        }
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let playing = self.playing.is_some();
            if ui.add_enabled(last > 0 && !self.busy, egui::Button::new(if playing { "Pause" } else { "Play" })).on_hover_text("Replay the denoising").clicked()
            {
                if playing {
                    self.playing = None;
                } else {
                    self.play(ui.input(|i| i.time));
                }
            }
            let mut s = self.step;
            if ui.add_enabled(last > 0, egui::Slider::new(&mut s, 0..=last).text("step")).changed() {
                self.seek(s);
            }
            ui.add_space(8.0);
            let l = ui.label("speed");
            egui::ComboBox::from_id_salt("speed")
                .selected_text(format!("{}×", self.settings.speed))
                .width(60.0)
                .show_ui(ui, |ui| {
                    for v in [0.25, 0.5, 1.0, 2.0, 4.0, 16.0] {
                        ui.selectable_value(&mut self.settings.speed, v, format!("{v}×"));
                    }
                })
                .response
                .labelled_by(l.id);
        });
        if let Some(run) = &self.run {
            if let Some(s) = canvas::chart(ui, run, self.step) {
                self.seek(s);
            }
        }
        ui.small("Bars: tokens committed per step · line: their mean confidence (0–1) · click or drag to seek");
        if let Some(text) = self.answer().map(str::to_string) {
            ui.separator();
            ui.label(RichText::new("Text").strong());
            ui.add(egui::Label::new(RichText::new(text).monospace()).wrap().selectable(true));
        }
    }

    fn settings_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Settings");
        let s = &mut self.settings;
        let o = &mut s.options;
        egui::Grid::new("settings").num_columns(2).show(ui, |ui| {
            row(ui, "Steps", |ui| ui.add(egui::DragValue::new(&mut o.steps).range(1..=4096)));
            if s.mode == Mode::Generate {
                row(ui, "Gen length", |ui| ui.add(egui::DragValue::new(&mut o.gen_length).range(1..=8192)));
                row(ui, "Block length", |ui| ui.add(egui::DragValue::new(&mut o.block_length).range(1..=8192)));
            } else {
                row(ui, "Span length", |ui| ui.add(egui::DragValue::new(&mut s.span_length).range(1..=crate::sampler::text::MAX_SPAN)));
            }
            row(ui, "Temperature", |ui| ui.add(egui::DragValue::new(&mut o.temperature).range(0.0..=5.0).speed(0.05)));
            row(ui, "CFG scale", |ui| ui.add(egui::DragValue::new(&mut o.cfg_scale).range(0.0..=20.0).speed(0.1)));
            row(ui, "Remasking", |ui| {
                egui::ComboBox::from_id_salt("remasking")
                    .selected_text(format!("{:?}", o.remasking))
                    .show_ui(ui, |ui| {
                        for r in [Remasking::LowConfidence, Remasking::Random, Remasking::Entropy, Remasking::Margin] {
                            ui.selectable_value(&mut o.remasking, r, format!("{r:?}"));
                        }
                    })
                    .response
            });
            row(ui, "Cache", |ui| {
                egui::ComboBox::from_id_salt("cache")
                    .selected_text(o.cache.name())
                    .show_ui(ui, |ui| {
                        for c in [CacheMode::Dual, CacheMode::Prefix, CacheMode::None] {
                            ui.selectable_value(&mut o.cache, c, c.name());
                        }
                    })
                    .response
                    .on_hover_text("K/V reuse inside a block: dual runs only the block at each step (fastest), prefix skips what is before it, none recomputes everything (the reference)")
            });
            let l = ui.checkbox(&mut s.threshold_on, "Threshold");
            ui.add_enabled(s.threshold_on, egui::DragValue::new(&mut s.threshold).range(0.01..=1.0).speed(0.01)).labelled_by(l.id);
            ui.end_row();
            row(ui, "Seed", |ui| ui.add(egui::DragValue::new(&mut o.seed)));
        });
        ui.checkbox(&mut o.early_stop, "Stop early on end-of-text");
        if s.mode == Mode::Generate {
            let l = ui.label("Pins (OFFSET:WORD, comma-separated)").on_hover_text("Fix a word at an answer position before denoising, e.g. 0:Yes, 10:because");
            ui.add(egui::TextEdit::singleline(&mut s.pins).id_salt("pins").hint_text("e.g. 0:Yes")).labelled_by(l.id);
        }
        if ui.button("Defaults").clicked() {
            let keep = (std::mem::take(&mut s.prompt), std::mem::take(&mut s.recent), s.last_model.take(), s.mode);
            *s = Default::default();
            (s.prompt, s.recent, s.last_model, s.mode) = keep;
        }
    }

    fn stats_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Stats");
        let run = self.run.as_ref();
        let steps = run.map_or(0, |r| r.events.len());
        let ms: f64 = run.map_or(0.0, |r| r.events.iter().map(|e| e.ms).sum());
        egui::Grid::new("stats").num_columns(2).show(ui, |ui| {
            ui.label("Adapter");
            ui.label(&self.gpu.report.name);
            ui.end_row();
            ui.label("ms / step");
            ui.label(if steps > 0 { format!("{:.1}", ms / steps as f64) } else { "–".into() });
            ui.end_row();
            let r = run.and_then(|r| r.result.as_ref());
            // Live: tokens committed so far over the steps' time; afterwards the run's own figure
            // (end-of-text padding not counted).
            let committed: usize = run.map_or(0, |r| r.events.iter().filter(|e| !e.early_stop).map(|e| e.committed.len()).sum());
            ui.label("tokens / s");
            ui.label(match r {
                Some(r) => format!("{:.1}", r.tokens_per_second),
                None if ms > 0.0 => format!("{:.1}", committed as f64 / (ms / 1000.0)),
                None => "–".into(),
            });
            ui.end_row();
            ui.label("Steps · passes");
            ui.label(r.map_or(format!("{steps}"), |r| format!("{} · {}", r.steps, r.model_passes)));
            ui.end_row();
            ui.label("Total");
            ui.label(r.map_or("–".into(), |r| format!("{:.0} ms{}", r.ms, if r.cancelled { " (stopped)" } else { "" })));
            ui.end_row();
        });
    }

    /// `--screenshot`: a few frames after the run, the window's pixels to a PNG, then close.
    fn screenshot(&mut self, ctx: &egui::Context) {
        let Some(n) = self.shot else { return };
        self.shot = Some(n + 1);
        ctx.request_repaint();
        if n == 5 {
            let path = self.options.screenshot.clone().unwrap_or_default();
            let c = ctx.clone();
            ctx.request_screenshot(move |img| {
                let bytes: Vec<u8> = img.pixels.iter().flat_map(|p| p.to_array()).collect();
                let r = image::RgbaImage::from_raw(img.size[0] as u32, img.size[1] as u32, bytes).map(|i| i.save(&path));
                match r {
                    Some(Ok(())) => eprintln!("screenshot: {}", path.display()),
                    Some(Err(e)) => eprintln!("error: cannot write the screenshot {}: {e}", path.display()),
                    None => eprintln!("error: the screenshot had an unexpected size"),
                }
                c.send_viewport_cmd(egui::ViewportCommand::Close);
            });
        }
    }
}

/// One row of the settings grid: a label and the widget it names (for screen readers too).
fn row(ui: &mut egui::Ui, label: &str, add: impl FnOnce(&mut egui::Ui) -> egui::Response) {
    let l = ui.label(label);
    add(ui).labelled_by(l.id);
    ui.end_row();
}

fn legend(ui: &mut egui::Ui) {
    let chip = |ui: &mut egui::Ui, c: egui::Color32, t: &str| {
        ui.label(RichText::new("  ").background_color(c));
        ui.small(t);
    };
    chip(ui, canvas::MASKED, "masked");
    chip(ui, canvas::FRESH[0], "<0.3");
    chip(ui, canvas::FRESH[1], "<0.7");
    chip(ui, canvas::FRESH[2], ">=0.7");
    chip(ui, canvas::DONE, "earlier");
}

/// The family the loader found and its shape, for the model bar: "dream · 28 layers",
/// "llada-moe · 16 layers · 64 experts, top-8".
pub fn family_text(c: &crate::model::ModelConfig) -> String {
    let moe = if c.is_moe() { format!(" · {} experts, top-{}", c.n_experts, c.n_experts_used) } else { String::new() };
    format!("{} · {} layers{moe}", c.family, c.n_layers)
}
