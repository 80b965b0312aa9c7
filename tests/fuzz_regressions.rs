//! The fuzz targets' properties on stable Rust, for CI: every minimized input that once crashed
//! a target (`tests/data/fuzz/<target>/`) now gives an `Ok` or a clear `Err`, and a short,
//! deterministic mutation loop over seeds made from the repository's own model files runs every
//! target without a panic, an oversized allocation (the same guard as the fuzz targets) or a
//! slow input. The entry points are the fuzz crate's own (`fuzz/src/entry.rs`); the long runs
//! are libFuzzer's (`fuzz/`, docs/reliability.md).

#[path = "../fuzz/src/entry.rs"]
mod entry;
#[path = "../fuzz/src/guard.rs"]
mod guard;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use unmask::model::gguf::{dtype_of_ggml, Gguf, Value};
use unmask::model::gguf_write::GgufWriter;
use unmask::rng::Rng;

#[global_allocator]
static GUARD: guard::Guard = guard::Guard;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: impl AsRef<Path>) -> Vec<u8> {
    let p = root().join(p);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs one input through a target, as libFuzzer would, and bounds its time. An input that
/// fails is kept in test-output/fuzz/ (to be minimized and added to tests/data/fuzz/).
fn run(name: &str, f: entry::Target, data: &[u8], what: &dyn Fn() -> String) {
    guard::input_len(data.len());
    let t = Instant::now();
    let r = std::panic::catch_unwind(|| f(data));
    let slow = t.elapsed() > Duration::from_secs(10);
    if r.is_err() || slow {
        let keep = root().join("test-output/fuzz").join(format!("{name}-{}", what().replace([' ', '/', '(', ')', ','], "_")));
        std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
        std::fs::write(&keep, data).unwrap();
        panic!("target {name} {} on {} (kept as {})", if slow { "took over 10 s" } else { "panicked" }, what(), keep.display());
    }
}

#[test]
fn every_minimized_crash_input_is_read_or_refused() {
    let mut n = 0;
    for (name, f) in entry::TARGETS {
        let dir = root().join("tests/data/fuzz").join(name);
        let Ok(files) = std::fs::read_dir(&dir) else { continue };
        for p in files.flatten().map(|e| e.path()) {
            let data = std::fs::read(&p).unwrap();
            run(name, *f, &data, &|| p.display().to_string());
            n += 1;
        }
    }
    eprintln!("{n} regression inputs");
}

fn claim(extra: usize, bytes: &[u8]) -> Vec<u8> {
    [&(extra as u64).to_le_bytes()[..], bytes].concat()
}

/// A GGUF's header without its tokenizer keys (the tensors as holes), framed as the `gguf`
/// target reads it: the bytes after it are claimed, not given.
fn gguf_seed(path: &str) -> Vec<u8> {
    let file = read(path);
    let g = Gguf::parse(path, &file).unwrap();
    let mut w = GgufWriter::default();
    for (k, v) in g.metadata.iter().filter(|(k, _)| !k.starts_with("tokenizer.")) {
        w.meta(k, v.clone());
    }
    for t in &g.tensors {
        w.zeros(&t.name, t.dims.clone(), dtype_of_ggml(t.ggml_type).unwrap());
    }
    let bytes = w.to_bytes();
    let head = Gguf::parse(path, &bytes).unwrap().data_offset as usize;
    claim(bytes.len() - head, &bytes[..head])
}

/// The demo tokenizer cut to its first `n` ids (and the merges that stay within them).
fn small_tokenizer(n: u64) -> String {
    let mut t: serde_json::Value = serde_json::from_slice(&read("models/demo/tokenizer.json")).unwrap();
    let vocab = t["model"]["vocab"].as_object_mut().unwrap();
    vocab.retain(|_, id| id.as_u64().unwrap() < n);
    let keep = vocab.clone();
    let merges = t["model"]["merges"].as_array_mut().unwrap();
    merges.retain(|m| {
        let (a, b) = (m[0].as_str().unwrap(), m[1].as_str().unwrap());
        keep.contains_key(a) && keep.contains_key(b) && keep.contains_key(&format!("{a}{b}"))
    });
    t["added_tokens"].as_array_mut().unwrap().retain(|a| a["id"].as_u64().unwrap() < n);
    t.to_string()
}

/// Seeds per target, from the repository's files (fuzz/seed.sh writes the larger corpora).
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let families = ["dream", "illada", "llada_moe", "rnd1", "llada2", "diffusion_gemma"];
    match target {
        "gguf" => ["models/demo-q4_0.gguf", "tests/data/families/dream/model.gguf", "tests/data/families/diffusion_gemma/model-llamacpp-f16.gguf"]
            .map(gguf_seed)
            .to_vec(),
        "gguf_tokenizer" => {
            let meta = unmask::model::gguf_tokenizer::tokenizer_metadata("t", &small_tokenizer(280), None).unwrap();
            let mut w = GgufWriter::default();
            for (k, v) in meta {
                w.meta(&k, v);
            }
            w.meta("tokenizer.ggml.eos_token_id", Value::U32(0));
            vec![claim(0, &w.to_bytes())]
        }
        "tokenizer_json" => vec![small_tokenizer(280).into_bytes()],
        "safetensors" => [(0u8, "models/demo"), (1, "tests/data/families/dream"), (3, "tests/data/families/llada2"), (4, "tests/data/families/diffusion_gemma")]
            .map(|(which, dir)| {
                let file = read(format!("{dir}/model.safetensors"));
                let n = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
                [&[which][..], &claim(file.len() - n, &file[..n])].concat()
            })
            .to_vec(),
        "config" => families
            .iter()
            .map(|f| read(format!("tests/data/families/{f}/config.json")))
            .chain([read("tests/data/families/diffusion_gemma/generation_config.json")])
            .collect(),
        "shard_index" => vec![br#"{"metadata": {"total_size": 9}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#.to_vec()],
        "request" => vec![
            [&[2u8, 4, 32, 32, 32][..], b"Mia has 12 apples.\x000:Once\x002: upon"].concat(),
            [&[2u8 | 8, 3, 0, 0, 8][..], "The [MASK] sat on the <mask:5>. naïve".as_bytes()].concat(),
            [&[6u8 | 16, 4, 48, 16, 12][..], b"tokens\x001:x"].concat(),
        ],
        "request_json" => vec![
            br#"{"prompt": "Why?", "chat": true, "pins": ["0:Once"], "options": {"gen_length": 64, "block_length": 32, "steps": 64}}"#.to_vec(),
            br#"{"messages": [{"role": "user", "content": "Hi"}], "options": {"gen_length": 32, "block_length": 32, "steps": 32, "schedule": "block", "threshold": 0.9}}"#.to_vec(),
            br#"{"infill": "a [MASK] b <mask:3>", "span_length": 3}"#.to_vec(),
        ],
        other => panic!("no seeds for {other}"),
    }
}

/// One random edit, of the kinds libFuzzer makes: a bit, a byte, a number that is a typical
/// boundary written over 1 to 8 bytes, a removed, repeated or inserted run, a cut end.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = |rng: &mut Rng, n: usize| rng.below(n.max(1) as u32) as usize;
    let n = data.len();
    match rng.below(7) {
        0 if n > 0 => data[at(rng, n)] ^= 1 << rng.below(8),
        1 if n > 0 => data[at(rng, n)] = rng.next_u64() as u8,
        2 if n > 0 => {
            let edge = [0u64, 1, 2, 0x7F, 0xFF, 0xFFFF, 0xFFFF_FFFF, 1 << 31, 1 << 40, u64::MAX, u64::MAX / 2, 24, 4096];
            let v = edge[at(rng, edge.len())].to_le_bytes();
            let (i, w) = (at(rng, n), [1, 2, 4, 8][at(rng, 4)]);
            let w = w.min(n - i);
            data[i..i + w].copy_from_slice(&v[..w]);
        }
        3 if n > 0 => {
            let i = at(rng, n);
            let len = 1 + at(rng, (n - i).min(64));
            data.drain(i..i + len.min(n - i));
        }
        4 if n > 0 => {
            let i = at(rng, n);
            let run = data[i..(i + 1 + at(rng, 16)).min(n)].to_vec();
            let j = at(rng, n + 1);
            data.splice(j..j, run);
        }
        5 => {
            let j = at(rng, n + 1);
            let alphabet = b"[]{}<>:\"0123456789,MASKmask\0\xff";
            let bytes: Vec<u8> = (0..1 + at(rng, 8)).map(|_| alphabet[at(rng, alphabet.len())]).collect();
            data.splice(j..j, bytes);
        }
        _ => data.truncate(at(rng, n + 1)),
    }
}

#[test]
fn fuzz_smoke_mutates_the_seeds_of_every_target() {
    let started = Instant::now();
    for (i, (name, f)) in entry::TARGETS.iter().enumerate() {
        // The gguf target reads megabytes of (claimed) zeros per input through the loaders'
        // path: fewer of its mutants keep the whole smoke well under a minute.
        let mutants = if *name == "gguf" { 300 } else { 4000 };
        let t = Instant::now();
        let seeds = seeds(name);
        for s in &seeds {
            run(name, *f, s, &|| "a seed".into());
        }
        let mut rng = Rng::new(0xF022 + i as u64);
        for k in 0..mutants {
            let mut data = seeds[k % seeds.len()].clone();
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut data);
            }
            run(name, *f, &data, &|| format!("mutant {k} of seed {}", k % seeds.len()));
        }
        eprintln!("{name}: {mutants} mutants in {:.1} s", t.elapsed().as_secs_f64());
    }
    eprintln!("fuzz smoke: {:.1} s in all", started.elapsed().as_secs_f64());
}
