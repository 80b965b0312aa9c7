//! Writes a stand-in for the bundled demo model (a small random LLaDA-architecture model with a
//! byte-level tokenizer) for the web page and its browser tests while the trained demo model is
//! not there: `cargo run --release --example write_demo_standin -- OUT_DIR`.
//! OUT_DIR gets `demo-standin-q4_0.gguf` (tokenizer embedded; the page's bundled model),
//! `tokenizer.json` and
//! `hf/` (config.json + model.safetensors + tokenizer.json, to try the page's local-files path).
//! Its LM head only scores lowercase letters, space, comma and full stop, so its (meaningless)
//! answers are letters and spaces that the page can show and remask.

use std::path::PathBuf;
use unmask::model::files::save_hf_dir;
use unmask::model::gguf_tokenizer::tokenizer_metadata;
use unmask::model::{DType, HostTensor, Quant, Role};
use unmask::synth::{byte_tokenizer_json, random_model, tiny_config_with_tokenizer};

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/demo-standin".into()));
    // 2 layers, 4 heads of 32 (d_model 128), 2 KV heads, MLP 256, vocab 262: ~1 M parameters.
    let cfg = tiny_config_with_tokenizer(2, 4, 2, 32, 256);
    let mut w = random_model(&cfg, DType::F32, 2024);
    let keep = |id: usize| id == b' ' as usize || id == b',' as usize || id == b'.' as usize || (b'a' as usize..=b'z' as usize).contains(&id);
    let mut head = w.tensors[Role::LmHead].to_f32();
    for (id, row) in head.chunks_mut(cfg.d_model).enumerate() {
        // Zero rows never win the argmax; the kept ones are scaled up so that confidences spread
        // over the whole 0..1 range (the page colours cells by them).
        let scale = if keep(id) { 6.0 } else { 0.0 };
        row.iter_mut().for_each(|x| *x *= scale);
    }
    *w.tensors.get_mut(unmask::model::Key::global(Role::LmHead)).expect("a head") = HostTensor::from_f32(cfg.vocab_size, cfg.d_model, &head);
    let tokenizer = byte_tokenizer_json();
    std::fs::create_dir_all(&out).expect("create the output folder");
    save_hf_dir(&w, Some(tokenizer.as_bytes()), &out.join("hf")).expect("write the HF folder");
    w.convert(Quant::new(DType::Q4_0)).expect("q4_0 suits these shapes");
    // The tokenizer is embedded in the GGUF too, as `unmask convert` does for the real demo model.
    let meta = tokenizer_metadata("tokenizer.json", &tokenizer, Some(cfg.family().chat_template)).expect("the byte tokenizer embeds");
    let gguf = w.to_gguf(meta);
    std::fs::write(out.join("demo-standin-q4_0.gguf"), &gguf).expect("write the GGUF");
    std::fs::write(out.join("tokenizer.json"), &tokenizer).expect("write tokenizer.json");
    println!("wrote {} ({} bytes), tokenizer.json and hf/", out.join("demo-standin-q4_0.gguf").display(), gguf.len());
}
