//! The desktop app (`unmask app`): the page's denoising view in a native window (eframe/egui),
//! drawn with the engine's own wgpu device so the weights are on the GPU once. The engine runs
//! on a thread of its own (`worker`); the window only sends commands and draws the events.
//! Reading order: `run` (a generation as data), `worker` (the engine thread; `dg` runs
//! DiffusionGemma), `state` (what the buttons do), `ui`, `panel` and `canvas` (drawing),
//! `settings` (what is remembered).

pub mod canvas;
mod dg;
mod panel;
pub mod run;
pub mod settings;
pub mod state;
mod ui;
pub mod worker;

pub use state::{AppOptions, UnmaskApp};

use crate::gpu::Gpu;
use crate::{Error, Result};
use eframe::{egui, egui_wgpu};
use std::sync::Arc;

/// How eframe should draw: on the engine's instance, adapter, device and queue.
pub fn wgpu_setup(gpu: &Gpu) -> egui_wgpu::WgpuSetup {
    egui_wgpu::WgpuSetup::Existing(egui_wgpu::WgpuSetupExisting {
        instance: gpu.instance.clone(),
        adapter: gpu.adapter.clone(),
        device: gpu.device.clone(),
        queue: gpu.queue.clone(),
    })
}

/// Opens the window and runs until it is closed.
pub fn run(options: AppOptions) -> Result<()> {
    let gpu = Arc::new(pollster::block_on(Gpu::new())?);
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Unmask")
            .with_app_id("unmask")
            .with_inner_size([1120.0, 760.0])
            .with_min_inner_size([520.0, 380.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: egui_wgpu::WgpuConfiguration { wgpu_setup: wgpu_setup(&gpu), ..Default::default() },
        // A scripted run (--screenshot) starts from the defaults and leaves the user's settings alone.
        persistence_path: options.screenshot.as_ref().map(|p| p.with_extension("ron")),
        ..Default::default()
    };
    let scripted = options.screenshot.is_some();
    eframe::run_native("unmask", native, Box::new(move |cc| Ok(Box::new(UnmaskApp::new(&cc.egui_ctx, if scripted { None } else { cc.storage }, gpu, options)))))
        .map_err(|e| Error::Gpu(format!("the window could not open ({e}): the app needs a desktop session (X11 or Wayland; DISPLAY or WAYLAND_DISPLAY set); on a server use `xvfb-run unmask app`, or the CLI")))
}
