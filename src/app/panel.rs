//! The side panel: the sampler settings (those that do not apply to the loaded model disabled,
//! with a note: DiffusionGemma runs its checkpoint's uniform-state sampler) and the stats of the
//! run (adapter, ms per step, tokens per second, steps and passes, total time).

use super::settings::Mode;
use super::state::UnmaskApp;
use crate::sampler::{CacheMode, Remasking};
use eframe::egui;

impl UnmaskApp {
    pub(super) fn settings_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Settings");
        let dg = self.diffusion();
        let masked = dg.is_none();
        let s = &mut self.settings;
        let o = &mut s.options;
        egui::Grid::new("settings").num_columns(2).show(ui, |ui| {
            match dg {
                None => row(ui, "Steps", true, |ui| ui.add(egui::DragValue::new(&mut o.steps).range(1..=4096))),
                Some(d) => {
                    let l = ui.label("Steps per canvas").on_hover_text("DiffusionGemma denoises each canvas for up to this many steps");
                    ui.horizontal(|ui| {
                        let mut own = s.dg_steps.is_none();
                        if ui.checkbox(&mut own, format!("checkpoint's ({})", d.steps)).changed() {
                            s.dg_steps = (!own).then_some(d.steps);
                        }
                        if let Some(n) = &mut s.dg_steps {
                            ui.add(egui::DragValue::new(n).range(1..=4096)).labelled_by(l.id);
                        }
                    });
                    ui.end_row();
                }
            }
            if s.mode == Mode::Generate || !masked {
                row(ui, "Gen length", true, |ui| ui.add(egui::DragValue::new(&mut o.gen_length).range(1..=8192)));
                row(ui, "Block length", masked, |ui| ui.add(egui::DragValue::new(&mut o.block_length).range(1..=8192)));
            } else {
                row(ui, "Span length", true, |ui| ui.add(egui::DragValue::new(&mut s.span_length).range(1..=crate::sampler::text::MAX_SPAN)));
            }
            row(ui, "Temperature", masked, |ui| ui.add(egui::DragValue::new(&mut o.temperature).range(0.0..=5.0).speed(0.05)));
            row(ui, "CFG scale", masked, |ui| ui.add(egui::DragValue::new(&mut o.cfg_scale).range(0.0..=20.0).speed(0.1)));
            row(ui, "Remasking", masked, |ui| {
                egui::ComboBox::from_id_salt("remasking")
                    .selected_text(format!("{:?}", o.remasking))
                    .show_ui(ui, |ui| {
                        for r in [Remasking::LowConfidence, Remasking::Random, Remasking::Entropy, Remasking::Margin] {
                            ui.selectable_value(&mut o.remasking, r, format!("{r:?}"));
                        }
                    })
                    .response
            });
            row(ui, "Cache", masked, |ui| {
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
            let l = ui.add_enabled(masked, egui::Checkbox::new(&mut s.threshold_on, "Threshold"));
            ui.add_enabled(masked && s.threshold_on, egui::DragValue::new(&mut s.threshold).range(0.01..=1.0).speed(0.01)).labelled_by(l.id);
            ui.end_row();
            row(ui, "Seed", true, |ui| ui.add(egui::DragValue::new(&mut o.seed)));
        });
        ui.add_enabled(masked, egui::Checkbox::new(&mut o.early_stop, "Stop early on end-of-text"));
        if s.mode == Mode::Generate {
            let l = ui.label("Pins (OFFSET:WORD, comma-separated)").on_hover_text("Fix a word at an answer position before denoising, e.g. 0:Yes, 10:because");
            ui.add_enabled(masked, egui::TextEdit::singleline(&mut s.pins).id_salt("pins").hint_text("e.g. 0:Yes")).labelled_by(l.id);
        }
        if let Some(d) = dg {
            ui.small(format!(
                "DiffusionGemma: uniform-state denoising of canvases of {} tokens with the checkpoint's temperatures and entropy bound; \
                 remasking, block length, temperature, CFG, cache, threshold, pins and remask clicks do not apply.",
                d.canvas_length
            ));
        }
        if ui.button("Defaults").clicked() {
            let keep = (std::mem::take(&mut s.prompt), std::mem::take(&mut s.recent), s.last_model.take(), s.mode);
            *s = Default::default();
            (s.prompt, s.recent, s.last_model, s.mode) = keep;
        }
    }

    pub(super) fn stats_ui(&mut self, ui: &mut egui::Ui) {
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
            let committed: usize = run.map_or(0, |r| r.events.iter().filter(|e| !e.early_stop).map(|e| e.accepted().count()).sum());
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
}

/// One row of the settings grid: a label and the widget it names (for screen readers too),
/// greyed out when it does not apply.
fn row(ui: &mut egui::Ui, label: &str, enabled: bool, add: impl FnOnce(&mut egui::Ui) -> egui::Response) {
    let l = ui.add_enabled(enabled, egui::Label::new(label));
    ui.add_enabled_ui(enabled, add).inner.labelled_by(l.id);
    ui.end_row();
}
