//! The window: the model bar (open, recent, plan, progress), the prompt and its buttons, the
//! canvas with the scrubber and the chart, the answer text, and the side panel (`panel`); plus
//! keys (Ctrl+Enter, Esc, Left/Right), dropped files and the `--screenshot` run.

use super::canvas;
use super::settings::Mode;
use super::state::UnmaskApp;
use crate::engine::human;
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
                    ui.label(&m.family)
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
        let dg = self.diffusion();
        if dg.is_some() {
            self.settings.mode = Mode::Generate;
        }
        let label = ui.horizontal(|ui| {
            let l = ui.label(RichText::new("Prompt").strong());
            ui.radio_value(&mut self.settings.mode, Mode::Generate, "Generate");
            ui.add_enabled_ui(dg.is_none(), |ui| ui.radio_value(&mut self.settings.mode, Mode::Infill, "Infill"))
                .response
                .on_disabled_hover_text("DiffusionGemma has no mask token: it only writes after a prompt");
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
            Mode::Generate if dg.is_some() => {
                "The model writes whole canvases after the prompt: each starts as random tokens, and every step keeps its confident samples and re-noises the rest. Ctrl+Enter generates, Esc stops."
            }
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
        // DiffusionGemma: the canvas and its cells kept and re-noised at this step.
        let uniform = run.start.mask == super::run::NO_MASK;
        let kept = match ev {
            Some(e) if uniform => {
                format!(" · canvas {} · {} accepted, {} re-noised", e.block + 1, e.accepted().count(), e.committed.len() - e.accepted().count())
            }
            _ => String::new(),
        };
        let stop = match run.result.as_ref().and_then(|r| r.stop.as_deref()) {
            Some(s) => format!(" · stop: {s}"),
            None => String::new(),
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(format!(
                    "step {} / {planned} · {} {}{kept}{early}{stop}",
                    self.step,
                    run.masked_at(self.step),
                    if uniform { "to come" } else { "masked" }
                ))
                .monospace(),
            );
            ui.add_space(12.0);
            legend(ui, uniform);
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
        ui.small("Bars: tokens committed (DiffusionGemma: accepted) per step · line: their mean confidence (0–1) · click or drag to seek");
        if let Some(text) = self.answer().map(str::to_string) {
            ui.separator();
            ui.label(RichText::new("Text").strong());
            ui.add(egui::Label::new(RichText::new(text).monospace()).wrap().selectable(true));
        }
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

fn legend(ui: &mut egui::Ui, uniform: bool) {
    let chip = |ui: &mut egui::Ui, c: egui::Color32, t: &str| {
        ui.label(RichText::new("  ").background_color(c));
        ui.small(t);
    };
    chip(ui, canvas::MASKED, "masked");
    chip(ui, canvas::FRESH[0], "<0.3");
    chip(ui, canvas::FRESH[1], "<0.7");
    chip(ui, canvas::FRESH[2], ">=0.7");
    if uniform {
        chip(ui, canvas::RENOISED, "re-noised");
    }
    chip(ui, canvas::DONE, "earlier");
}
