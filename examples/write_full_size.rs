//! Writes an LLaDA-8B-shaped Q4_0 GGUF as a sparse file (4.5 GB apparent, ~0.6 GB on disk):
//! the real shapes, names and metadata with checkable synthetic weights (see
//! `unmask::synth::identity_gguf`). The page tests load it in headless Chromium.
//!     cargo run --release --example write_full_size -- OUT.gguf [--tokenizer] [--config C]
//! `--tokenizer` also embeds a byte-level tokenizer of the full vocabulary
//! (`synth::byte_tokenizer_json_for`) and a chat template that adds nothing, which llama.cpp
//! needs to run the file (bench/gpu.sh, bench/llama_cpp_bench.sh). `--config` takes another
//! shape from a Hugging Face config.json (e.g. models/demo/config.json).

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut out, mut tokenizer, mut config) = (None, false, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tokenizer" => tokenizer = true,
            "--config" => config = args.next(),
            _ if out.is_none() && !a.starts_with("--") => out = Some(a),
            _ => out = None,
        }
    }
    let Some(out) = out else {
        eprintln!("usage: write_full_size OUT.gguf [--tokenizer] [--config config.json]");
        std::process::exit(2);
    };
    let c = match &config {
        None => unmask::synth::llada_8b_config(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| unmask::model::ModelConfig::from_hf_json(path, &t).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        },
    };
    let mut g = unmask::synth::identity_gguf(&c);
    if tokenizer {
        let json = unmask::synth::byte_tokenizer_json_for(&c);
        // A chat template that passes the prompt through as it is, so that llama.cpp (which
        // always applies one) sees exactly the prompt's tokens.
        let template = "{% for message in messages %}{{ message['content'] }}{% endfor %}";
        let meta = unmask::model::gguf_tokenizer::tokenizer_metadata("the synthetic tokenizer", &json, Some(template)).expect("a byte-level tokenizer embeds");
        for (k, v) in meta {
            g.meta(&k, v);
        }
    }
    if let Err(e) = g.write_sparse(std::path::Path::new(&out)) {
        eprintln!("{out}: {e}");
        std::process::exit(1);
    }
    println!("{out}");
}
