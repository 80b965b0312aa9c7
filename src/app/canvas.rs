//! Drawing a run: the canvas of cells (masked, fresh commits coloured by confidence, earlier
//! ones, DiffusionGemma's re-noised cells dim, the prompt, block boundaries), wrapped to the
//! window's width, and the per-step chart (tokens committed or accepted per step as bars, their
//! mean confidence as a line) that seeks on click.

use super::run::{band, cell_text, CellState, Run, PADDING};
use eframe::egui::{self, Color32, CornerRadius, Pos2, Rect, Sense, Shape, Stroke, Vec2};
use std::collections::BTreeSet;

pub const MASKED: Color32 = Color32::from_rgb(0x3a, 0x3f, 0x4b);
/// Fresh commits with confidence < 0.3, < 0.7, ≥ 0.7.
pub const FRESH: [Color32; 3] = [Color32::from_rgb(0xc0, 0x39, 0x2b), Color32::from_rgb(0xd6, 0x8a, 0x10), Color32::from_rgb(0x2e, 0x9e, 0x4f)];
pub const DONE: Color32 = Color32::from_rgb(0x2a, 0x4f, 0x80);
pub const GIVEN: Color32 = Color32::from_rgb(0x30, 0x30, 0x30);
pub const SELECTED: Color32 = Color32::from_rgb(0xff, 0xd2, 0x4a);
/// DiffusionGemma's cells re-noised at the step shown (drawn with the step's argmax, dim).
pub const RENOISED: Color32 = Color32::from_rgb(0x2b, 0x2e, 0x36);

/// What one drawing of the canvas showed (the UI tests read these, like the page's `drawn`).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub step: usize,
    pub masked: usize,
    /// Committed cells (prompt excluded).
    pub committed: usize,
    /// Cells re-noised at the step shown (DiffusionGemma).
    pub renoised: usize,
    /// The canvas as drawn: token ids, `None` for masks.
    pub tokens: Vec<Option<u32>>,
    /// Where each cell was drawn (points).
    pub rects: Vec<egui::Rect>,
}

/// Draws `run` as it was after `step`; returns the position clicked (with Shift held: just that
/// token), if any. `selectable`: answer cells can be clicked for remasking.
pub fn canvas(ui: &mut egui::Ui, run: &Run, step: usize, selected: &BTreeSet<usize>, selectable: bool) -> (Option<(usize, bool)>, Frame) {
    let mut clicked = None;
    let (mut masked, mut committed, mut renoised) = (0, 0, 0);
    let view = run.view(step);
    let mut rects = Vec::with_capacity(run.len());
    ui.spacing_mut().item_spacing = Vec2::new(3.0, 4.0);
    ui.horizontal_wrapped(|ui| {
        for (p, s) in view.iter().enumerate() {
            let padding = s.state != CellState::Masked && s.state != CellState::Prompt && run.is_padding(s.token);
            let (text, fill, fg) = match s.state {
                _ if padding => (PADDING.to_string(), MASKED, Color32::from_gray(120)),
                CellState::Masked => ("    ".to_string(), MASKED, Color32::from_gray(140)),
                CellState::Prompt => (cell_text(s.text), GIVEN, Color32::from_gray(150)),
                CellState::Given => (cell_text(s.text), GIVEN, Color32::from_gray(230)),
                CellState::Fresh(c) => (cell_text(s.text), FRESH[band(c)], Color32::WHITE),
                CellState::Renoised => (cell_text(s.text), RENOISED, Color32::from_gray(105)),
                CellState::Done => (cell_text(s.text), DONE, Color32::from_gray(235)),
            };
            match s.state {
                CellState::Masked => masked += 1,
                CellState::Fresh(_) | CellState::Done => committed += 1,
                CellState::Renoised => renoised += 1,
                _ => {}
            }
            let fill = if selected.contains(&p) { SELECTED } else { fill };
            let fg = if selected.contains(&p) { Color32::BLACK } else { fg };
            let can_click = selectable && p >= run.gen_start() && matches!(s.state, CellState::Fresh(_) | CellState::Done | CellState::Given);
            if run.starts_block(p) {
                ui.add_space(4.0);
            }
            let r = cell(ui, &text, fill, fg, if can_click { Sense::click() } else { Sense::hover() });
            let r = if can_click { r.on_hover_cursor(egui::CursorIcon::PointingHand) } else { r };
            rects.push(r.rect);
            if run.starts_block(p) {
                let x = r.rect.left() - 3.5;
                let colour = if p == run.gen_start() { Color32::from_rgb(0xe0, 0xe0, 0xe0) } else { Color32::from_gray(120) };
                ui.painter().line_segment([Pos2::new(x, r.rect.top()), Pos2::new(x, r.rect.bottom())], Stroke::new(1.5, colour));
            }
            let r = match s.state {
                _ if padding => r.on_hover_text(format!("end of text (token {}) · step {}", s.token, s.when)),
                CellState::Fresh(_) | CellState::Done => r.on_hover_text(format!("step {} · confidence {:.3} · token {}", s.when, s.confidence, s.token)),
                CellState::Renoised => r.on_hover_text(format!("step {} · re-noised · argmax {} (confidence {:.3})", s.when, s.token, s.confidence)),
                _ => r,
            };
            if can_click && r.clicked() {
                clicked = Some((p, ui.input(|i| i.modifiers.shift || i.modifiers.alt)));
            }
        }
    });
    let tokens = view.iter().map(|s| (s.state != CellState::Masked).then_some(s.token)).collect();
    (clicked, Frame { step, masked, committed, renoised, tokens, rects })
}

/// One cell: its text on a rounded fill, never broken inside (the row wraps between cells).
fn cell(ui: &mut egui::Ui, text: &str, fill: Color32, fg: Color32, sense: Sense) -> egui::Response {
    let galley = ui.painter().layout_no_wrap(text.to_string(), egui::TextStyle::Monospace.resolve(ui.style()), fg);
    let pad = Vec2::new(3.0, 1.0);
    let (rect, r) = ui.allocate_exact_size(galley.size() + 2.0 * pad, sense);
    if ui.is_rect_visible(rect) {
        ui.painter().rect_filled(rect, CornerRadius::same(3), fill);
        ui.painter().galley(rect.min + pad, galley, fg);
    }
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, text));
    r
}

/// The per-step chart; returns the step to show when it is clicked or dragged.
pub fn chart(ui: &mut egui::Ui, run: &Run, step: usize) -> Option<usize> {
    let width = ui.available_width().max(100.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 90.0), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::same(3), ui.visuals().extreme_bg_color);
    let evs = &run.events;
    if evs.is_empty() {
        return None;
    }
    // While a run is live the x axis spans every planned step; afterwards the steps taken.
    let n = if run.result.is_some() { evs.len() } else { evs.len().max(run.start.steps) };
    let pad = 4.0;
    let inner = rect.shrink(pad);
    let bw = inner.width() / n as f32;
    let max_c = evs.iter().map(|e| e.accepted().count()).max().unwrap_or(1).max(1) as f32;
    let mut line = Vec::new();
    for (i, e) in evs.iter().enumerate() {
        let x = inner.left() + i as f32 * bw;
        let h = inner.height() * e.accepted().count() as f32 / max_c;
        let colour = if e.step == step { Color32::from_rgb(0x7a, 0xb8, 0xff) } else { Color32::from_rgb(0x4a, 0x6f, 0xa5) };
        painter.rect_filled(Rect::from_min_max(Pos2::new(x + bw * 0.12, inner.bottom() - h), Pos2::new(x + bw * 0.88, inner.bottom())), 0.0, colour);
        if i > 0 && e.block != evs[i - 1].block {
            painter.line_segment([Pos2::new(x, inner.top()), Pos2::new(x, inner.bottom())], Stroke::new(1.0, Color32::from_gray(110)));
        }
        if e.accepted().next().is_some() {
            line.push(Pos2::new(x + bw / 2.0, inner.bottom() - inner.height() * e.mean_confidence()));
        }
    }
    if line.len() > 1 {
        painter.add(Shape::line(line, Stroke::new(1.5, FRESH[1])));
    }
    if step > 0 {
        let x = inner.left() + (step.min(n) as f32 - 0.5) * bw;
        painter.line_segment([Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())], Stroke::new(1.0, Color32::WHITE));
    }
    let seek = response.interact_pointer_pos().filter(|_| response.clicked() || response.dragged())?;
    let last = run.last_step();
    let s = (((seek.x - inner.left()) / inner.width()) * last as f32 + 0.5).round();
    Some((s.max(0.0) as usize).min(last))
}
