//! Argument parsing and dispatch for the `unmask` binary. Errors print one line and exit with
//! code 2 for bad input (options, prompts, model files) and 1 for GPU failures.

mod app;
mod bench;
mod bench_compile;
mod bench_kernels;
mod bench_probe;
mod bench_soft;
mod convert;
mod dgemma;
mod dgview;
mod eval;
mod generate;
mod info;
mod model;
mod serve;

use clap::{Parser, Subcommand};
use unmask::Error;

#[derive(Parser)]
#[command(name = "unmask", version, about = "Run masked diffusion language models (LLaDA) on the GPU through WebGPU/wgpu.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an answer after a prompt by iterative unmasking.
    Generate(generate::GenerateArgs),
    /// Fill `[MASK]` / `<mask:N>` spans anywhere in a text.
    Infill(generate::InfillArgs),
    /// Rewrite a model as GGUF (tokenizer embedded) or safetensors, optionally quantized.
    Convert(convert::ConvertArgs),
    /// Run the held-out task suite (arithmetic, reversal, infill) and print accuracy per task.
    Eval(eval::EvalArgs),
    /// Measure generation speed on this GPU (JSON lines).
    Bench(bench::BenchArgs),
    /// Open the desktop app: the denoising animated in a window, every setting, models by file dialog or drag-and-drop.
    App(app::AppArgs),
    /// Serve the model over HTTP: an OpenAI-compatible API (chat/completions, completions,
    /// models) plus /v1/infill, for Open WebUI, editors and scripts.
    Serve(serve::ServeArgs),
    /// Show a model's config, tensors, dtypes and sizes, and the GPU adapter that would run it.
    Info(info::InfoArgs),
}

pub fn main() -> i32 {
    quiet_device_select_without_wayland();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if !matches!(cli.command, Command::App(_) | Command::Serve(_)) {
        die_quietly_on_closed_pipes();
    }
    let result = match cli.command {
        Command::Generate(a) => generate::generate(a),
        Command::Infill(a) => generate::infill(a),
        Command::Info(a) => info::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::App(a) => app::run(a),
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                Error::Input(_) | Error::Model { .. } => 2,
                Error::Gpu(_) | Error::Limits(_) => 1,
            }
        }
    }
}

/// Output piped into a reader that stops early (`unmask bench … | head`) ends the process
/// quietly, as with other command-line tools, rather than in a panic from `println!` (Rust's
/// runtime ignores SIGPIPE, so writes fail instead). Not for the app and the server, which
/// write to windows and sockets and must outlive a closed connection.
fn die_quietly_on_closed_pipes() {
    #[cfg(unix)]
    // SAFETY: sets the default action of one signal, first thing, while the process has one
    // thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Mesa's Vulkan device-select layer (installed as an implicit layer with Mesa's drivers) asks
/// the Wayland compositor for the default GPU whenever the instance enables
/// `VK_KHR_wayland_surface`, which wgpu always does; with no `XDG_RUNTIME_DIR`, libwayland prints
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." at each device
/// enumeration, i.e. before every command's output. With no Wayland session there is nobody to
/// ask and wgpu picks the adapter itself, so the layer is turned off (`NODEVICE_SELECT=1`, its
/// own switch), unless the user steers it (`MESA_VK_DEVICE_SELECT`, `DRI_PRIME`). The binary does
/// this first thing, while it has one thread (the library never changes the environment).
fn quiet_device_select_without_wayland() {
    let absolute = |k: &str| std::env::var_os(k).is_some_and(|v| v.to_string_lossy().starts_with('/'));
    let wayland_reachable = absolute("XDG_RUNTIME_DIR") || absolute("WAYLAND_DISPLAY");
    let steered = ["NODEVICE_SELECT", "MESA_VK_DEVICE_SELECT", "DRI_PRIME"].iter().any(|k| std::env::var_os(k).is_some());
    if !wayland_reachable && !steered {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}
