//! Writes an LLaDA-8B-shaped Q4_0 GGUF as a sparse file (4.5 GB apparent, ~0.6 GB on disk):
//! the real shapes, names and metadata with checkable synthetic weights (see
//! `unmask::synth::identity_gguf`). The page tests load it in headless Chromium.
//!     cargo run --release --example write_full_size -- OUT.gguf

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: write_full_size OUT.gguf");
        std::process::exit(2);
    };
    let g = unmask::synth::identity_gguf(&unmask::synth::llada_8b_config());
    if let Err(e) = g.write_sparse(std::path::Path::new(&out)) {
        eprintln!("{out}: {e}");
        std::process::exit(1);
    }
    println!("{out}");
}
