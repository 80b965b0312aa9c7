//! The `unmask` binary end to end on random tiny models written to a temporary folder: `info`,
//! `generate` (text, JSON, visual), `infill`, `app` without a display, and one-line errors with
//! exit code 2 on bad input.

use std::path::Path;
use std::process::{Command, Output};
use unmask::model::files::save_hf_dir;
use unmask::model::DType;
use unmask::synth::{byte_tokenizer_json, random_model, tiny_config_with_tokenizer};

fn unmask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unmask")).args(args).env("UNMASK_DEMO_MODEL", "/nonexistent/demo.gguf").output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// One JSON value per line of `out` (what `unmask bench` prints).
fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `unmask bench --synthetic CONFIG --kernels SET` for a prompt and answer of these lengths: its
/// JSON lines and its stdout (for assertion messages); the run must succeed.
fn bench_kernels_lines(config: &Path, set: &str, prompt_length: &str, gen_length: &str) -> (Vec<serde_json::Value>, String) {
    let args = ["bench", "--synthetic", config.to_str().unwrap(), "--kernels", set, "--prompt-length", prompt_length, "--gen-length", gen_length];
    let o = unmask(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    (json_lines(&out), out)
}

fn model_dir(dir: &Path) -> String {
    let w = random_model(&tiny_config_with_tokenizer(2, 4, 2, 16, 64), DType::F32, 3);
    save_hf_dir(&w, Some(byte_tokenizer_json().as_bytes()), dir).unwrap();
    let gguf = w.to_gguf(vec![]);
    std::fs::write(dir.join("model.gguf.bin"), gguf).unwrap();
    dir.display().to_string()
}

#[test]
fn info_on_a_directory_and_on_a_gguf_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let o = unmask(&["info", &dir]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in ["safetensors", "layers     2", "heads 4 (kv 2, head_dim 16)", "vocab      262", "tensors    21", "tokenizer.json, 262 tokens", "adapter"] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    let g = tmp.path().join("m.gguf");
    std::fs::rename(tmp.path().join("model.gguf.bin"), &g).unwrap();
    let o = unmask(&["info", "--json", g.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "gguf");
    assert_eq!(v["rope"], "Interleaved");
    assert_eq!(v["config"]["n_kv_heads"], 2);
    // The kernels a run would choose, with the UNMASK_* switches applied: lavapipe (a CPU
    // adapter) takes the CPU lanes' layout unless told the tiled one, whose attention there is
    // the portable kernel (no GPU: no flash attention, no split-K); a bad switch is an error.
    assert_eq!(v["kernels"]["layout"], "cpu-lanes", "{v}");
    assert_eq!(v["kernels"]["attention"], "attention_cpu_lanes", "{v}");
    let o = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["info", &dir]).env("UNMASK_KERNELS", "tiled").env("UNMASK_FUSE", "off").output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out.lines().find(|l| l.starts_with("kernels")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("tiled layout: matmuls on f32 ALUs, 4×4 a thread; attention attention.wgsl; K/V f32"), "{line}");
    assert!(v["kernels"]["experts"].is_null(), "a dense model: {v}");
    // A mixture-of-experts model names its grouped expert matmul too (on cooperative matrices
    // where a GPU has them: `moe_coop`).
    let moe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/llada_moe");
    for (layout, shader) in [("cpu-lanes", "moe_matmul"), ("tiled", "moe_matmul_tiled")] {
        let o = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["info", moe.to_str().unwrap(), "--json"]).env("UNMASK_KERNELS", layout).output().unwrap();
        assert!(o.status.success(), "{}", text(&o).1);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["kernels"]["experts"], shader, "{layout}: {v}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["info", &dir]).env("UNMASK_FUSE", "maybe").output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("UNMASK_FUSE") && err.lines().count() == 1, "{err}");
}

#[test]
fn bad_files_and_paths_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\x00\x00\x00trunc").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (args, needle) in [
        (vec!["info", junk.to_str().unwrap()], "junk.gguf: truncated"),
        (vec!["info", "/nonexistent/model"], "no such file"),
        (vec!["info", empty.to_str().unwrap()], "no model found"),
    ] {
        let o = unmask(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle) && err.lines().count() == 1 && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn generate_prints_text_and_json_that_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let base = ["generate", "--model", &dir, "--prompt", "The cat", "--gen-length", "12", "--steps", "6", "--block-length", "4", "--no-early-stop"];
    let o = unmask(&base);
    let (plain, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let mut json_args = base.to_vec();
    json_args.push("--json");
    let o = unmask(&json_args);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o).0));
    assert_eq!(v["text"].as_str().unwrap().trim_end(), plain.trim_end());
    // 3 blocks × 2 steps, 2 tokens a step; the per-step commits rebuild the final tokens.
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    let prompt_len = v["prompt_tokens"].as_array().unwrap().len();
    let mut rebuilt = vec![u64::MAX; 12];
    for s in steps {
        let c = s["committed"].as_array().unwrap();
        assert_eq!(c.len(), 2);
        for c in c {
            let p = c["pos"].as_u64().unwrap() as usize - prompt_len;
            assert_eq!(rebuilt[p], u64::MAX, "position committed twice");
            rebuilt[p] = c["token"].as_u64().unwrap();
        }
    }
    let tokens: Vec<u64> = v["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert_eq!(rebuilt, tokens);
    // Deterministic: the same command gives the same tokens.
    let again: serde_json::Value = serde_json::from_slice(&unmask(&json_args).stdout).unwrap();
    assert_eq!(again["tokens"], v["tokens"]);
    // Dream's top-k reaches the GPU: with one token kept, every commit has probability 1.
    let top1: serde_json::Value = serde_json::from_slice(&unmask(&[&json_args[..], &["--top-k", "1", "--top-p", "0.9"]].concat()).stdout).unwrap();
    assert_eq!((top1["settings"]["options"]["top_k"].as_u64(), top1["settings"]["options"]["top_p"].as_f64()), (Some(1), Some(0.9f32 as f64)));
    let probs: Vec<f64> =
        top1["steps"].as_array().unwrap().iter().flat_map(|s| s["committed"].as_array().unwrap().iter().map(|c| c["confidence"].as_f64().unwrap())).collect();
    assert!(probs.len() == 12 && probs.iter().all(|p| *p == 1.0), "{probs:?}");
}

#[test]
fn visual_mode_redraws_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let o = unmask(&["generate", "--model", &dir, "--prompt-tokens", "1,2,3", "--gen-length", "8", "--steps", "4", "--visual", "--no-early-stop"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.matches("\x1b[2J").count(), 5, "4 steps and the final frame");
    assert!(out.contains("step 2/4") && out.contains('░'));
}

/// End-of-text padding is a dim placeholder in the animation, never `<|endoftext|>` strings,
/// and the printed answer has no special tokens (the demo model answers in fewer than 64).
#[test]
fn end_of_text_padding_is_a_placeholder() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo-q4_0.gguf");
    let ask =
        ["generate", "--model", demo, "--chat", "--prompt", "Mia has 12 apples and buys 30 more. How many apples does she have now?", "--gen-length", "64"];
    let o = unmask(&[&ask[..], &["--visual"]].concat());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let last = out.rsplit("\x1b[2J").next().unwrap();
    assert!(last.contains("\x1b[2m∅\x1b[0m") && !out.contains("<|"), "{last}");
    let o = unmask(&ask);
    let (answer, _) = text(&o);
    assert!(!answer.trim().is_empty() && !answer.contains("<|") && !answer.contains('∅'), "{answer}");
}

#[test]
fn infill_changes_only_the_masked_span() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let o = unmask(&["infill", "--model", &dir, "--text", "ab<mask:3>cd", "--json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let toks: Vec<u64> = v["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    assert_eq!(toks.len(), 7);
    assert_eq!((toks[0], toks[1], toks[5], toks[6]), (b'a' as u64, b'b' as u64, b'c' as u64, b'd' as u64));
    assert!(toks[2..5].iter().all(|&t| t != 256), "every mask filled");
    assert_eq!(v["steps"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_generation_settings_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--prompt", "x", "--steps", "5", "--gen-length", "8", "--block-length", "4"], "multiple of the number of blocks"),
        (vec!["--prompt", "x", "--gen-length", "10", "--block-length", "4"], "not a multiple of --block-length"),
        (vec!["--prompt", "  "], "prompt is empty"),
        (vec!["--prompt", "x", "--remasking", "best"], "unknown remasking"),
        (vec!["--prompt", "x", "--temperature", "-1"], "--temperature"),
        (vec!["--prompt", "x", "--threshold", "1.5"], "(0, 1]"),
        (vec!["--prompt", "x", "--top-k", "0"], "--top-k must be at least 1"),
        (vec!["--prompt", "x", "--top-p", "0"], "--top-p 0 must be in (0, 1]"),
        (vec!["--prompt", "x", "--gen-length", "512", "--block-length", "32"], "context"),
        (vec!["--prompt-tokens", "1,999"], "outside the vocabulary"),
        (vec!["--prompt", "x", "--pin", "nope"], "OFFSET:WORD"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["generate", "--model", &dir];
        args.extend(extra.iter());
        let o = unmask(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{extra:?}: {err}");
    }
    let o = unmask(&["infill", "--model", &dir, "--text", "no spans"]);
    assert_eq!(o.status.code(), Some(2));
    let o = unmask(&["generate", "--prompt", "x"]);
    assert!(text(&o).1.contains("no --model given") && text(&o).1.contains("/nonexistent/demo.gguf"), "{}", text(&o).1);
}

#[test]
fn without_model_the_bundled_demo_model_answers() {
    let o = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["generate", "--chat", "--prompt", "Who is Gane Tox's mother?", "--gen-length", "16", "--steps", "8", "--json"])
        .env_remove("UNMASK_DEMO_MODEL")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), 16);
    assert!(!v["text"].as_str().unwrap().trim().is_empty(), "the demo model wrote some text");
}

#[test]
fn info_shows_the_model_with_a_broken_embedded_tokenizer_and_tokenizer_json_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let w = random_model(&tiny_config_with_tokenizer(2, 4, 2, 16, 64), DType::F32, 3);
    let broken = vec![("tokenizer.ggml.model".to_string(), unmask::model::gguf::Value::Str("gpt2".into()))];
    let g = tmp.path().join("m.gguf");
    std::fs::write(&g, w.to_gguf(broken)).unwrap();
    let o = unmask(&["info", g.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // llama.cpp prints `model params` too: 2 layers of (4·64·64 + 3·... ) — counted from the shapes.
    let params: usize = w.tensors.iter().map(|(_, _, t)| t.rows * t.cols).sum();
    let want = format!("family     llada ({:.2} K params)", params as f64 / 1e3);
    for needle in [want.as_str(), "layers     2", "tokenizer  unusable", "tokenizer.ggml.tokens", "tokenizer.json beside"] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    // Generating with text needs the tokenizer: a one-line error that says what is wrong.
    let o = unmask(&["generate", "--model", g.to_str().unwrap(), "--prompt", "hi"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("tokenizer.ggml.tokens") && !err.contains("panicked"), "{err}");
    // A tokenizer.json beside the file takes precedence over the broken embedded one.
    std::fs::write(tmp.path().join("tokenizer.json"), byte_tokenizer_json()).unwrap();
    let o = unmask(&["info", g.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success() && out.contains("tokenizer  tokenizer.json, 262 tokens"), "{out}{err}");
    let o = unmask(&["generate", "--model", g.to_str().unwrap(), "--prompt", "hi", "--gen-length", "8", "--steps", "8"]);
    assert!(o.status.success(), "{}", text(&o).1);
}

#[test]
fn a_plain_terminal_without_xdg_runtime_dir_stays_quiet() {
    // A plain Debian shell (no desktop session): nothing about Wayland may reach stderr.
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let o = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["info", &dir])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("adapter"), "{out}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "stderr: {err}");
}

#[test]
fn convert_to_a_k_quant_says_they_are_only_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    for q in ["q4_k", "Q6_K"] {
        let out = tmp.path().join(format!("{q}.gguf"));
        let o = unmask(&["convert", &dir, "--out", out.to_str().unwrap(), "--quant", q]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{q}: {err}");
        assert!(err.contains("is a k-quant, which is read from GGUF files") && err.contains("use q4_0 or q8_0") && err.lines().count() == 1, "{q}: {err}");
        assert!(!out.exists(), "nothing written");
    }
    // Checked before the model is read.
    let o = unmask(&["convert", "/nonexistent/model", "--out", "x.gguf", "--quant", "q4_k"]);
    assert!(text(&o).1.contains("k-quant"), "{}", text(&o).1);
}

#[test]
fn bench_refuses_absurd_numbers_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let huge = tmp.path().join("huge.json");
    std::fs::write(
        &huge,
        r#"{"d_model": 16777216, "n_layers": 4096, "n_heads": 65536, "mlp_hidden_size": 16777216, "vocab_size": 16777216, "max_sequence_length": 4096}"#,
    )
    .unwrap();
    let max = u64::MAX.to_string();
    let max_multiple = (u64::MAX - 31).to_string(); // a multiple of the block length 32
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--synthetic", "tiny", "--gen-length", &max], "not a multiple of --block-length"),
        (vec!["--synthetic", "tiny", "--gen-length", &max_multiple], "exceed the model's context of 512"),
        (vec!["--synthetic", "tiny", "--prompt-length", &max], "exceed the model's context of 512"),
        (vec!["--synthetic", "tiny", "--prompt-length", "600000", "--gen-length", "32"], "exceed the model's context of 512"),
        (vec!["--synthetic", "tiny", "--kernels", "--prompt-length", &max], "exceed the model's context of 512"),
        (vec!["--synthetic", "tiny", "--kernels", "bogus"], "use all, attention, matmul, moe, probe, phases, soft or compile"),
        (vec!["--synthetic", "tiny", "--kernels", "moe"], "the model has no experts"),
        (vec!["--synthetic", "tiny", "--steps", &max], "--steps"),
        (vec!["--synthetic", huge.to_str().unwrap()], "parameters is more than a model made in memory may have"),
        (vec!["--synthetic", "tiny", "--quant", "q4_k"], "Q4_K is a k-quant"),
        (vec!["--model", &dir, "--gen-length", &max_multiple], "exceed the model's context"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["bench", "--runs", "1"];
        args.extend(extra.iter());
        let o = unmask(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle) && err.lines().count() == 1 && !err.contains("panicked"), "{extra:?}: {err}");
    }
}

#[test]
fn bench_kernels_probe_measures_the_platform_with_loop_bounding_and_bounds_checks_off_and_on() {
    // A dispatch's own cost, streaming and workgroup-memory reads and f32 multiply-adds, each timed by GPU
    // timestamps (lavapipe has them) with naga's loop bounding off and on (bounds checks on), and
    // with both off.
    let o = unmask(&["bench", "--synthetic", "tiny", "--kernels", "probe"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines = json_lines(&out);
    let settings = [(false, true), (true, true), (false, false)];
    assert!(lines.iter().all(|l| settings.iter().any(|&(b, c)| l["loop_bounding"] == b && l["bounds_checks"] == c)), "{out}");
    for (bounding, checks) in settings {
        let of = |probe: &str| {
            lines
                .iter()
                .find(|l| l["probe"] == probe && l["loop_bounding"] == bounding && l["bounds_checks"] == checks)
                .unwrap_or_else(|| panic!("{probe}: {out}"))
        };
        assert_eq!(of("dispatch")["timed_by"], "timestamps", "{out}");
        assert!(of("dispatch")["us"].as_f64().unwrap() > 0.0 && of("dispatch")["wall_us"].as_f64().unwrap() > 0.0, "{out}");
        assert!(of("read")["gbps"].as_f64().unwrap() > 0.0 && of("read")["bytes"].as_u64().unwrap() >= 1 << 22, "{out}");
        assert!(of("fma")["gflops"].as_f64().unwrap() > 0.0 && of("fma")["rounds"].as_u64().unwrap() >= 16, "{out}");
        assert!(of("shared")["gbps"].as_f64().unwrap() > 0.0, "{out}");
    }
    assert!(lines.iter().all(|l| l["kernel"] == "probe"), "{out}");
}

/// Mesa's RADV driver file, which with `RADV_FORCE_FAMILY` compiles for an AMD GPU that is not
/// there.
fn radv_icd() -> std::path::PathBuf {
    std::fs::read_dir("/usr/share/vulkan/icd.d")
        .expect("no Vulkan ICDs (./build.sh test installs mesa-vulkan-drivers)")
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("radeon_icd."))
        .expect("Mesa's RADV is not installed (./build.sh test installs mesa-vulkan-drivers)")
}

/// `unmask bench --kernels compile` for Navi 21 on RADV (`radv_icd`), with `envs` too: its
/// output, after checking that it succeeded.
fn compile_for_navi21(icd: &std::path::Path, envs: &[(&str, &str)]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["bench", "--kernels", "compile"])
        .env("VK_ICD_FILENAMES", icd)
        .env("RADV_FORCE_FAMILY", "navi21")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    out
}

#[test]
fn bench_kernels_compile_shows_no_gpu_kernel_spilling_on_a_real_gpu_compiler() {
    // Mesa's RADV compiles for an AMD RDNA2 GPU (Navi 21) that this machine does not have: each
    // kernel as wgpu would hand it to the driver, and the driver's own statistics of the result.
    // None of the kernels GPUs run may spill registers or use scratch memory (the slow "local
    // memory" of a GPU); only the portable attention (one invocation a row, its query and
    // accumulator in private arrays) is allowed to, and no GPU takes it.
    let icd = radv_icd();
    let out = compile_for_navi21(&icd, &[]);
    let lines = json_lines(&out);
    assert!(lines.iter().all(|l| l["device"].as_str().unwrap().contains("RADV") && l["driver"].as_str().unwrap().contains("Mesa")), "{out}");
    let mut compiled = 0;
    for l in &lines {
        let (kernel, c) = (l["kernel"].as_str().unwrap(), &l["compiled"]);
        assert!(c.get("error").is_none(), "{kernel}: {c}");
        if let Some(why) = c.get("skipped") {
            // Navi 21 through Mesa 22 has no cooperative matrices; it has shader-f16.
            assert_eq!(why, "the device has no cooperative matrices", "{kernel}");
            let coop = kernel.starts_with("MatmulCoop") || kernel.starts_with("MoeMatmulCoop") || kernel.contains("coop: true");
            assert!(coop || kernel == "Probe(Coop)", "{kernel}");
            continue;
        }
        compiled += 1;
        let n = |key: &str| c[key].as_u64().unwrap_or_else(|| panic!("{kernel}: no {key:?} in {c}"));
        assert!(n("VGPRs") > 0 && n("Code size") > 0, "{kernel}: {c}");
        assert_eq!((n("Spilled VGPRs"), n("Spilled SGPRs")), (0, 0), "{kernel} spills registers: {c}");
        if !kernel.starts_with("Attention { layout: Portable") {
            assert_eq!(n("Scratch size"), 0, "{kernel} uses scratch memory: {c}");
        }
    }
    // Every weight format's tiled matmul, both register tiles, every attention layout, the
    // merges, the head pass, the grouped expert matmul and the rest.
    assert!(compiled >= 50, "{compiled} kernels compiled: {out}");
    assert!(lines.iter().any(|l| l["register_tile"] == 8 && l["compiled"]["VGPRs"].as_u64() > Some(0)), "{out}");

    // naga's index clamps (kept on) cost little: the arrays the loops read have one dimension
    // per loop, so a clamp folds or is the same at every read (README "Index clamps kept out of
    // the inner loops"). With flat arrays the attention tiles' kernel had 39 % more
    // instructions than without clamps; now no kernel has over 15 % more.
    let unclamped = compile_for_navi21(&icd, &[("UNMASK_BOUNDS_CHECKS", "off")]);
    let instructions = |l: &serde_json::Value| l["compiled"]["Instructions"].as_u64();
    for (l, u) in lines.iter().zip(unclamped.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())) {
        assert_eq!(l["kernel"], u["kernel"]);
        if let (Some(with), Some(without)) = (instructions(l), instructions(&u)) {
            assert!(with as f64 <= 1.15 * without as f64, "{}: {with} instructions with index clamps, {without} without", l["kernel"]);
        }
    }

    // A driver that keeps its statistics to itself (lavapipe), or no driver at all: one line
    // that says what to do, no panic.
    let lvp = icd.with_file_name(icd.file_name().unwrap().to_string_lossy().replace("radeon_icd", "lvp_icd"));
    for (driver, needle) in [(lvp.as_path(), "RADV_FORCE_FAMILY=navi21"), (std::path::Path::new("/nonexistent/icd.json"), "no Vulkan driver found")] {
        let o = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["bench", "--kernels", "compile"]).env("VK_ICD_FILENAMES", driver).output().unwrap();
        let (out, err) = text(&o);
        assert!(!o.status.success() && out.is_empty(), "{driver:?}: {out}");
        assert!(err.contains(needle) && err.lines().count() == 1 && !err.contains("panicked"), "{driver:?}: {err}");
    }
}

#[test]
fn bench_gpu_table_reads_what_the_bench_writes() {
    // bench/gpu_table.py turns a GPU run's files into BENCHMARKS.md's tables; the GPU machine is
    // rare, so it is checked here on the same commands' output (lavapipe's probes and a
    // generation, RADV's compile statistics), in gpu.sh's layout, that every part still reads:
    // the folders of two calls, the second resuming the first (GPU_FROM) with the later steps.
    let tmp = tempfile::tempdir().unwrap();
    let out = &tmp.path().join("call1");
    let out2 = &tmp.path().join("call2");
    std::fs::create_dir_all(out).unwrap();
    std::fs::create_dir_all(out2).unwrap();
    let bin = env!("CARGO_BIN_EXE_unmask");
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let o = Command::new(bin).args(args).envs(envs.iter().copied()).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let mut results = run(&["bench", "--synthetic", "tiny", "--kernels", "probe"], &[]);
    results.extend(run(&["bench", "--synthetic", "tiny", "--gen-length", "32", "--runs", "1"], &[]));
    let dgemma = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/families/diffusion_gemma");
    results.extend(run(&["bench", "--model", dgemma, "--prompt-length", "8", "--gen-length", "16", "--runs", "1"], &[]));
    let phases = run(&["bench", "--synthetic", "tiny", "--kernels", "phases", "--prompt-length", "16", "--gen-length", "16"], &[]);
    results.extend(phases.clone());
    std::fs::write(out.join("results.jsonl"), results).unwrap();
    let mut later = run(&["bench", "--synthetic", "tiny", "--kernels", "attention", "--prompt-length", "16", "--gen-length", "16"], &[]);
    later.extend(run(&["bench", "--synthetic", "tiny", "--kernels", "soft", "--prompt-length", "8", "--gen-length", "8"], &[]));
    std::fs::write(out2.join("results.jsonl"), later).unwrap();
    // `--kernels phases`: each f32 core at 32 rows whole and without each part of its k loop.
    let phases: Vec<serde_json::Value> = String::from_utf8(phases).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let skips: Vec<String> = phases.iter().filter(|l| l["register_tile"] == 4 && l["shape"] == "q_proj").map(|l| l["skip"].to_string()).collect();
    assert_eq!(
        skips,
        [r#"[]"#, r#"["loads"]"#, r#"["multiply-adds"]"#, r#"["loads","workgroup stores"]"#, r#"["loads","multiply-adds","workgroup stores"]"#],
        "{phases:?}"
    );
    let icd = radv_icd();
    std::fs::write(out.join("compile.jsonl"), compile_for_navi21(&icd, &[])).unwrap();
    std::fs::write(out.join("compile-bounded.jsonl"), compile_for_navi21(&icd, &[("UNMASK_LOOP_BOUNDING", "on")])).unwrap();
    std::fs::write(out.join("compile-unclamped.jsonl"), compile_for_navi21(&icd, &[("UNMASK_BOUNDS_CHECKS", "off")])).unwrap();
    // nvidia-smi's CSV and gpu.sh's stderr, as they look on the GPU machine.
    let head = "timestamp, pstate, clocks.current.sm [MHz], clocks.current.memory [MHz], power.draw [W], utilization.gpu [%], utilization.memory [%]\n";
    let (mut smi, mut smi2) = (head.to_string(), head.to_string());
    for s in 0..18 {
        let line = format!("2026/12/05 07:10:{s:02}.100, P0, {} MHz, 2619 MHz, 300.5 W, {} %, 3 %\n", 1000 + 100 * s, 10 * s);
        if s < 12 { &mut smi } else { &mut smi2 }.push_str(&line);
    }
    std::fs::write(out.join("smi.csv"), smi).unwrap();
    std::fs::write(out2.join("smi.csv"), smi2).unwrap();
    std::fs::write(out.join("gpu.txt"), "name, driver_version, memory.total [MiB]\nNVIDIA H200, 580.159.04, 143771 MiB\n").unwrap();
    let log = "+ [2] 07:10:00 probes\n+ [5] 07:10:06 UNMASK_COOP=off the 8B shape\n- [6] 530 s of the 540 s budget spent: this step and those after it left out; resume with GPU_FROM=6\n";
    std::fs::write(out.join("log.txt"), log).unwrap();
    std::fs::write(out2.join("log.txt"), "+ [6] 07:10:12 attention\nresults in x (30 steps, 9 s)\n").unwrap();
    let o = Command::new("python3").arg("bench/gpu_table.py").arg(out).arg(out2).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    let (text, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in [
        "NVIDIA H200",
        "| `[2] probes` | 6 | 1250 | 25 % |",
        "| `[5] UNMASK_COOP=off the 8B shape` | 6 | 1850 | 85 % |",
        "| `[6] attention` | 6 | 2450 | 145 % |",
        "    - [6] 530 s of the 540 s budget spent",
        "| fma | False | True |",
        "Compiled by Null hardware (RADV NAVI21)",
        "| `Matmul { dtype: Q4_0, variant: Tiled, short: false, x: F32, x4: false, w4: false, xw: false }, 8×8` |",
        "LB on: Scratch size / Spilled SGPRs / Spilled VGPRs",
        "no clamps: Instructions / SGPRs / VGPRs",
        "| unmask (cpu-lanes, coop False",
        "| tokens/s | GFLOP/s (of peak) |",
        "| attention_cpu_lanes variant cpu-lanes, lq 32, lk 32",
        "### Where a matmul's time goes",
        "| Q4_0 q_proj 32×64×64, f32 8×8, 1 slices |",
        "| matmul Q4_0 ff_out 32×64×128, tiled, coop False, x f32, 4×4, 1 slices |",
        "| soft_embed Q8_0 16×512×64, 1 chunks, 1 slices |",
        "| soft_embed Q8_0 16×512×64, 1 chunks, 2 slices |",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // DiffusionGemma's bench line (its own engine) has its row, with the GFLOP/s it achieved.
    let dg_row =
        text.lines().find(|l| l.starts_with("| unmask (DiffusionGemma, coop False, K/V f32) |")).unwrap_or_else(|| panic!("no DiffusionGemma row in:\n{text}"));
    let gflops = dg_row.split('|').nth(10).unwrap().trim();
    assert!(gflops.parse::<f64>().is_ok(), "{dg_row}");
}

#[test]
fn bench_gpu_sh_numbers_its_steps_keeps_to_its_budget_and_resumes() {
    // The GPU machine is lent for 15 minutes a session, a call at most 10: bench/gpu.sh's
    // budget and resume point are checked here with this build. With no time, every step is left
    // out and the first named as the place to resume; resuming at the last step runs it alone.
    let tmp = tempfile::tempdir().unwrap();
    let gpu_sh = |out: &str, envs: &[(&str, &str)]| {
        let o = Command::new("bash")
            .args(["bench/gpu.sh", "unmask"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("OUT", tmp.path().join(out))
            .env("GPU_UNMASK", env!("CARGO_BIN_EXE_unmask"))
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o).1);
        text(&o).1
    };
    let none = gpu_sh("none", &[("GPU_BUDGET_S", "0")]);
    // (The seconds already spent before step 1 vary with the machine's load.)
    let left_out = none.lines().find(|l| l.starts_with("- [1] ")).unwrap_or_else(|| panic!("{none}"));
    assert!(left_out.ends_with("s of the 0 s budget spent: this step and those after it left out; resume with GPU_FROM=1"), "{none}");
    assert!(!none.contains("+ ["), "{none}");
    let steps: usize = none.split("results in ").nth(1).and_then(|t| t.split_once(" (")).and_then(|(_, t)| t.split(' ').next()).unwrap().parse().unwrap();
    assert!(steps > 20, "{none}");
    let last = gpu_sh("last", &[("GPU_BUDGET_S", "300"), ("GPU_FROM", &steps.to_string())]);
    let started: Vec<&str> = last.lines().filter(|l| l.starts_with("+ [")).collect();
    assert_eq!(started.len(), 1, "{last}");
    assert!(started[0].starts_with(&format!("+ [{steps}] ")), "{last}");
    let results = std::fs::read_to_string(tmp.path().join("last/results.jsonl")).unwrap();
    let lines = json_lines(&results);
    assert!(!lines.is_empty() && lines.iter().all(|l| l["model"].as_str().unwrap().contains("diffusion_gemma")), "{results}");
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    // `unmask bench … | head -c 1`: head leaves after one byte, and the lines after it go into a
    // closed pipe; the process ends as other tools do, with no panic on stderr.
    let tmp = tempfile::tempdir().unwrap();
    let err_file = tmp.path().join("stderr");
    let script = format!("'{}' bench --synthetic tiny --kernels probe 2>'{}' | head -c 1 >/dev/null", env!("CARGO_BIN_EXE_unmask"), err_file.display());
    assert!(Command::new("sh").args(["-c", &script]).status().unwrap().success());
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
}

#[test]
fn bench_kernels_moe_times_the_grouped_expert_matmul_from_a_config_alone() {
    // The LLaDA-MoE fixture's config (8 experts, top-2): no model is made, and each layout that
    // runs here gives a line per format, projection and row count.
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/llada_moe/config.json");
    let (lines, out) = bench_kernels_lines(&cfg, "moe", "40", "24");
    let tiled: Vec<&serde_json::Value> = lines.iter().filter(|l| l["variant"] == "tiled").collect();
    // Q8_0 and Q4_0, gate and down, 64 and 32 rows.
    assert_eq!(tiled.len(), 8, "{out}");
    for l in &lines {
        assert_eq!(l["kernel"], "moe_matmul");
        assert!(l["ms"].as_f64().unwrap() > 0.0 && l["gflops"].as_f64().unwrap() > 0.0, "{l}");
        // Its figures as fractions of the platform probes' (measured quietly first).
        assert!(l["of_probe"].as_f64().unwrap() > 0.0 && l["of_probe_read"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!((l["experts"].as_u64(), l["top_k"].as_u64()), (Some(8), Some(2)));
    }
    // 64 rows × 2 / 8 experts: 16 pairs an expert, tiles of 16; 32 rows: 8.
    let tile = |rows: u64| tiled.iter().find(|l| l["rows"] == rows).unwrap()["pairs_per_tile"].as_u64();
    assert_eq!((tile(64), tile(32)), (Some(16), Some(8)));
}

#[test]
fn bench_kernels_soft_times_the_soft_embedding_whole_and_split() {
    // DiffusionGemma's soft embedding at a config's vocabulary × hidden size (the Dream fixture's:
    // 4096 × 64), 40 rows: one line as one workgroup a tile walks the table, one split across
    // the vocabulary as GPUs run it (split-K's slices and their merge: two launches).
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/dream/config.json");
    let (lines, out) = bench_kernels_lines(&cfg, "soft", "16", "24");
    let shape: Vec<_> = lines.iter().map(|l| (l["kernel"].clone(), l["rows"].as_u64(), l["vocab"].as_u64(), l["dim"].as_u64())).collect();
    assert_eq!(shape, vec![(serde_json::json!("soft_embed"), Some(40), Some(4096), Some(64)); 2], "{out}");
    let split: Vec<_> = lines.iter().map(|l| (l["splits"].as_u64().unwrap(), l["launches"].as_u64().unwrap())).collect();
    assert_eq!(split[0], (1, 1), "{out}");
    assert!(split[1].0 > 1 && split[1].1 == 2, "{out}");
    assert!(lines.iter().all(|l| l["ms"].as_f64().unwrap() > 0.0 && l["gflops"].as_f64().unwrap() > 0.0), "{out}");
    // A hidden size that is no whole number of Q8_0 blocks: one line that says so.
    let tmp = tempfile::tempdir().unwrap();
    let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    c["hidden_size"] = 48.into();
    let odd = tmp.path().join("config.json");
    std::fs::write(&odd, c.to_string()).unwrap();
    let o = unmask(&["bench", "--synthetic", odd.to_str().unwrap(), "--kernels", "soft"]);
    let (out, err) = text(&o);
    assert!(!o.status.success() && out.is_empty(), "{out}");
    assert!(err.contains("hidden size of 48 does not suit Q8_0") && !err.contains("panicked"), "{err}");
}

#[test]
fn the_app_without_a_display_or_with_bad_arguments_says_what_to_do() {
    let o = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["app"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("the window could not open") && err.contains("xvfb-run"), "{err}");
    for (args, want) in [(&["app", "--prompt", " "][..], "the prompt is empty"), (&["app", "--model", "/nonexistent/m.gguf"][..], "no such file")] {
        let o = unmask(args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// LLaDA 2's fixture through `unmask info` and `unmask generate` with no sampler flags: the
/// family's own sampler (aligned blocks of 32, threshold 0.95, 32 steps a block) fills the
/// canvas to its block boundary and gives the reference model's tokens (tests/llada2.rs).
#[test]
fn llada2_generates_its_reference_answer_with_its_own_sampler() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/llada2");
    let p = dir.to_str().unwrap();
    let o = unmask(&["info", p]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in ["family     llada2 ", "sigmoid scores", "best 2 of 4 groups", "1 shared", "block schedule", "threshold 0.95", "block-causal in blocks of 32"]
    {
        assert!(out.contains(needle), "info says {needle:?}:\n{out}");
    }
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let g = &r["generations"][0];
    assert_eq!((g["steps_per_block"].as_u64(), g["threshold"].as_f64()), (Some(32), Some(0.95)), "run a uses LLaDA 2's defaults");
    let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<u32>>();
    let prompt = ids(&g["prompt"]).iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",");
    let gen = g["max_new_tokens"].as_u64().unwrap().to_string();
    let args = ["generate", "--model", p, "--prompt-tokens", &prompt, "--gen-length", &gen, "--steps", "32", "--cache", "none", "--no-early-stop", "--json"];
    let o = unmask(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let want = ids(&g["output"]);
    assert_eq!(want.len(), 64);
    assert_eq!(ids(&v["tokens"]), want[11..], "the CLI's answer tokens (prompt {prompt}, the canvas filled to 64)");
    // Its blocks are its attention's: another block length is refused with one line.
    let o = unmask(&[&args[..], &["--block-length", "16"]].concat());
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("blocks of 32") && !err.contains("panicked"), "{err}");
}

/// Every family's fixture (tests/data/families: HF folder and llama.cpp's GGUF) through
/// `unmask info` and `unmask generate` with the family's default sampler: the tokens equal the
/// PyTorch reference generation that used that sampler (tests/families.rs checks the rest).
#[test]
fn every_family_generates_its_reference_answer_from_both_layouts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families");
    // (fixture, family name, the reference generation run with the family's default sampler)
    for (name, family, gen) in [("dream", "dream", 1), ("llada_moe", "llada-moe", 1), ("illada", "llada", 1), ("rnd1", "rnd1", 0)] {
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join(name).join("reference.json")).unwrap()).unwrap();
        let g = &r["generations"][gen];
        let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<u32>>();
        let (prompt, want) = (ids(&g["prompt"]), ids(&g["output"]));
        let prompt_arg = prompt.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",");
        for path in [root.join(name), root.join(name).join("model.gguf")] {
            let p = path.to_str().unwrap();
            let o = unmask(&["info", p]);
            let (out, err) = text(&o);
            assert!(o.status.success(), "{p}: {err}");
            assert!(out.contains(&format!("family     {family} ")), "{p}: info names the family:\n{out}");
            let args = [
                "generate",
                "--model",
                p,
                "--prompt-tokens",
                &prompt_arg,
                "--gen-length",
                "16",
                "--steps",
                "16",
                "--cache",
                "none",
                "--no-early-stop",
                "--json",
            ];
            let o = unmask(&args);
            let (out, err) = text(&o);
            assert!(o.status.success(), "{p}: {err}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let got = ids(&v["tokens"]);
            let o = unmask(&[&args[..], &["--cpu"]].concat());
            let cpu: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{p} --cpu: {}", text(&o).1));
            assert_eq!(ids(&cpu["tokens"]), got, "{p}: the CPU twin agrees");
            if name == "rnd1" {
                // RND1's reference keeps the canvas's last position for the end token; the CLI
                // fills all 16, so only the steps agree: both commit one position per step.
                assert_eq!(got.len(), 16, "{p}");
                assert_eq!(v["steps"].as_array().unwrap().len(), 16, "{p}: RND1's cutoff schedule commits one of 16 per step");
            } else {
                assert_eq!(got, want[prompt.len()..], "{p}: the answer of the reference ({})", g["algorithm"]);
            }
        }
    }
}

/// DiffusionGemma's fixture through `unmask info` and `unmask generate` (on the GPU and the CPU
/// twin; uniform-state sampler with the checkpoint's generation_config.json): whole canvases, the same
/// tokens for the same seed, and a truncated shard refused with one line.
#[test]
fn diffusion_gemma_generates_whole_canvases_from_its_folder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/diffusion_gemma");
    let p = dir.to_str().unwrap();
    let o = unmask(&["info", p]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("diffusion-gemma") && out.contains("3 sliding, window 4; 1 full") && out.contains("4 experts, top-2"), "{out}");
    // K/V as UNMASK_KV says (lavapipe's default is f32), in the plan and a generation.
    assert!(out.contains(" in f32)"), "{out}");
    let f16 = Command::new(env!("CARGO_BIN_EXE_unmask")).args(["info", p]).env("UNMASK_KV", "f16").output().unwrap();
    assert!(text(&f16).0.contains(" in f16)"), "{}", text(&f16).0);
    let o = Command::new(env!("CARGO_BIN_EXE_unmask"))
        .args(["generate", "--model", p, "--prompt", "The cat sat", "--gen-length", "8", "--json"])
        .env("UNMASK_KV", "f16")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let run = |seed: &str| -> serde_json::Value {
        let o = unmask(&["generate", "--model", p, "--prompt", "The cat sat", "--gen-length", "20", "--seed", seed, "--json"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("vision tower"), "the skipped vision tensors are said once: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let (a, b, c) = (run("1"), run("1"), run("2"));
    let toks = |v: &serde_json::Value| v["tokens"].as_array().unwrap().len();
    assert_eq!(toks(&a) % 16, 0, "whole canvases of 16");
    assert!(toks(&a) == 32 || a["stop"] == "eos", "20 new tokens take two canvases unless an end token stops it: {a}");
    assert_eq!(a["tokens"], b["tokens"], "the same seed gives the same answer");
    assert_ne!(a["steps"], c["steps"], "another seed draws other canvases");
    // The GPU (the default) and the CPU twin make the same choices from the same draws. The
    // random model's logits are nearly flat, so a final argmax may fall either way between the
    // two (seed 1: one of 32 does); step-for-step equality with tie-free draws is
    // tests/diffusion_gemma.rs's replay on both.
    let o = unmask(&["generate", "--model", p, "--prompt", "The cat sat", "--gen-length", "20", "--seed", "1", "--json", "--cpu"]);
    let cpu: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let same = cpu["tokens"].as_array().unwrap().iter().zip(a["tokens"].as_array().unwrap()).filter(|(x, y)| x == y).count();
    assert!(same >= 30 && toks(&cpu) == toks(&a), "CPU twin vs GPU: {same} of {} tokens agree", toks(&a));
    let counts = |v: &serde_json::Value| -> Vec<(u64, u64, u64)> {
        v["steps"].as_array().unwrap().iter().map(|e| (e["canvas"].as_u64().unwrap(), e["step"].as_u64().unwrap(), e["accepted"].as_u64().unwrap())).collect()
    };
    assert_eq!(counts(&cpu), counts(&a), "the same steps and acceptance counts");
    // Each step records every cell: accepted or re-noised, its entropy, the current token.
    let e = &a["steps"][0];
    assert_eq!((e["accepted_cells"].as_array().unwrap().len(), e["entropy"].as_array().unwrap().len(), e["tokens"].as_array().unwrap().len()), (16, 16, 16));
    // --steps caps the steps per canvas (the checkpoint's 10 otherwise).
    let o = unmask(&["generate", "--model", p, "--prompt", "The cat sat", "--gen-length", "20", "--seed", "1", "--json", "--steps", "3"]);
    let three: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(three["steps"].as_array().unwrap().len(), 6, "2 canvases × 3 steps");
    // --visual draws every step (a status line each) and ends with the stop reason.
    let o = unmask(&["generate", "--model", p, "--prompt", "The cat sat", "--gen-length", "20", "--seed", "1", "--visual"]);
    let out = text(&o).0;
    assert_eq!(out.matches(" · accepted ").count(), a["steps"].as_array().unwrap().len(), "{out}");
    assert!(out.contains("stopped by length"), "{out}");
    assert!(cpu["adapter"] == "CPU twin" && a["adapter"] != "CPU twin");
    // Bad requests: one line each, exit 2.
    for (args, needle) in [
        (vec!["--prompt", ""], "prompt is empty"),
        (vec!["--prompt-tokens", "1,99999"], "outside the vocabulary"),
        (vec!["--prompt", "x", "--gen-length", "1000000"], "context of 128"),
        (vec!["--prompt", "x", "--gen-length", "0"], "at least 1"),
    ] {
        let o = unmask(&[&["generate", "--model", p][..], &args[..]].concat());
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    }
    // A truncated shard: one line naming the file, exit 2.
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "generation_config.json"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).unwrap();
    }
    let st = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(tmp.path().join("model.safetensors"), &st[..st.len() - 1000]).unwrap();
    let o = unmask(&["generate", "--model", tmp.path().to_str().unwrap(), "--prompt-tokens", "1,2,3"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("model.safetensors") && err.lines().count() == 1 && !err.contains("panicked"), "{err}");
}

#[test]
fn unmask_kv_coop_fuse_and_attention_choose_kernels_and_a_bad_value_is_one_line() {
    // lavapipe has shader-f16: UNMASK_KV=f16 halves the planned K/V and generates; the default
    // on this CPU adapter is f32; a value that is no type is refused with what to use.
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let run = |kv: Option<&str>, args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_unmask"));
        c.args(args).env("UNMASK_DEMO_MODEL", "/nonexistent/demo.gguf");
        if let Some(kv) = kv {
            c.env("UNMASK_KV", kv);
        }
        c.output().unwrap()
    };
    let plan = |kv| {
        let o = run(kv, &["info", &dir]);
        assert!(o.status.success(), "{}", text(&o).1);
        text(&o).0.lines().find(|l| l.starts_with("plan")).unwrap().to_string()
    };
    let (default, f16, f32) = (plan(None), plan(Some("f16")), plan(Some("f32")));
    assert!(default.contains(" in f32)") && f32 == default, "{default}");
    assert!(f16.contains(" in f16)"), "{f16}");
    let gen = ["generate", "--model", &dir, "--prompt", "The cat", "--gen-length", "8", "--steps", "4", "--block-length", "4", "--json"];
    let o = run(Some("f16"), &gen);
    assert!(o.status.success(), "{}", text(&o).1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), 8);
    let o = run(Some("f8"), &gen);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("UNMASK_KV") && err.contains("use f16 or f32") && err.lines().count() == 1, "{err}");
    // UNMASK_COOP: off always works; on works where the adapter has cooperative matrices and is
    // otherwise refused with the reason; emulate works where shader-f16 and one fixed subgroup
    // size are (lavapipe) and is otherwise refused with the reason; anything else is one line
    // saying what to use.
    // The generation above with the bundled demo model and `envs` set.
    let gen_with = |envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_unmask"));
        c.args(gen).env("UNMASK_DEMO_MODEL", "/nonexistent/demo.gguf").envs(envs.iter().copied());
        c.output().unwrap()
    };
    // A bad value of `var`: exit code 2 and one line that names it and says what to use.
    let one_line = |o: &std::process::Output, var: &str, says: &str| {
        let err = text(o).1;
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(var) && err.contains(says) && err.lines().count() == 1, "{err}");
    };
    let coop = |v: &str| gen_with(&[("UNMASK_COOP", v)]);
    let o = coop("off");
    assert!(o.status.success(), "{}", text(&o).1);
    let info = run(None, &["info", &dir]);
    let has = text(&info).0.lines().any(|l| l.starts_with("adapter") && l.contains("cooperative matrices yes"));
    let o = coop("on");
    if has {
        assert!(o.status.success(), "{}", text(&o).1);
    } else {
        let err = text(&o).1;
        assert!(!o.status.success() && err.contains("no cooperative matrices"), "{err}");
    }
    let o = coop("emulate");
    let err = text(&o).1;
    assert!(o.status.success() || err.contains("emulating cooperative matrices needs shader-f16"), "{err}");
    one_line(&coop("maybe"), "UNMASK_COOP", "use on, off or emulate");
    // UNMASK_FUSE: the tiled layout fused (norms folded into the matmuls, Q/K/V and gate/up launches) or not
    // generates the same greedy tokens; anything but on/off is one line.
    let fuse = |v: &str| gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_FUSE", v)]);
    let tokens = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", text(o).1);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["tokens"].clone()
    };
    assert_eq!(tokens(&fuse("on")), tokens(&fuse("off")));
    one_line(&fuse("sometimes"), "UNMASK_FUSE", "use on or off");
    // UNMASK_HALF_INPUTS: on cooperative matrices (emulated where the adapter has shader-f16
    // and fixed subgroups: lavapipe) the matmuls' inputs in f16 or not give the same tokens;
    // anything but on/off is one line.
    let half = |v: &str| gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_COOP", "emulate"), ("UNMASK_HALF_INPUTS", v)]);
    // UNMASK_COOP_SHORT likewise: cooperative matmuls of at most 32 rows in 32×128 tiles or 64×64;
    // UNMASK_COOP_TILE: longer ones in 64×64 or 64×128 tiles.
    let short = |v: &str| gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_COOP", "emulate"), ("UNMASK_COOP_SHORT", v)]);
    let coop_tile = |v: &str| gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_COOP", "emulate"), ("UNMASK_COOP_TILE", v)]);
    if coop("emulate").status.success() {
        assert_eq!(tokens(&half("on")), tokens(&half("off")));
        assert_eq!(tokens(&short("on")), tokens(&short("off")));
        assert_eq!(tokens(&coop_tile("64x128")), tokens(&coop_tile("64x64")));
    }
    one_line(&half("half"), "UNMASK_HALF_INPUTS", "use on or off");
    one_line(&short("long"), "UNMASK_COOP_SHORT", "use on or off");
    one_line(&coop_tile("128x128"), "UNMASK_COOP_TILE", "use 64x64 or 64x128");
    // UNMASK_LOOP_BOUNDING: naga's loop counters change no token, in both layouts; anything but
    // on/off is one line.
    let bounding = |v: &str, kernels: &str| gen_with(&[("UNMASK_KERNELS", kernels), ("UNMASK_LOOP_BOUNDING", v)]);
    for kernels in ["tiled", "cpu-lanes"] {
        assert_eq!(tokens(&bounding("on", kernels)), tokens(&bounding("off", kernels)), "{kernels}");
    }
    one_line(&bounding("maybe", "tiled"), "UNMASK_LOOP_BOUNDING", "use on or off");
    // UNMASK_BOUNDS_CHECKS: the kernels without naga's index clamps change no token either (no
    // index of theirs leaves its array); anything but on/off is one line.
    let checks = |v: &str, kernels: &str| gen_with(&[("UNMASK_KERNELS", kernels), ("UNMASK_BOUNDS_CHECKS", v)]);
    for kernels in ["tiled", "cpu-lanes"] {
        assert_eq!(tokens(&checks("off", kernels)), tokens(&bounding("off", kernels)), "{kernels}");
    }
    one_line(&checks("none", "tiled"), "UNMASK_BOUNDS_CHECKS", "use on or off");
    // UNMASK_REGISTER_TILE: the 8×8 tile changes no token in the tiled layout; anything but
    // 4x4/8x8 is one line.
    let tile = |v: &str| gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_REGISTER_TILE", v)]);
    assert_eq!(tokens(&tile("8x8")), tokens(&tile("4x4")));
    one_line(&tile("16x16"), "UNMASK_REGISTER_TILE", "use 4x4 or 8x8");
    // UNMASK_SPLIT_FILL: a number of workgroups up to the planned most, else one line.
    for (v, says) in [("lots", "use a number"), ("0", "use 1 to 4096"), ("99999", "use 1 to 4096")] {
        one_line(&gen_with(&[("UNMASK_SPLIT_FILL", v)]), "UNMASK_SPLIT_FILL", says);
    }
    let o = gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_SPLIT_FILL", "4096")]);
    assert_eq!(tokens(&o), tokens(&fuse("on")));
    // UNMASK_ATTENTION: the tiled layout's three attention kernels give the same greedy tokens;
    // anything else is one line.
    let attention = |v: &str| gen_with(&[("UNMASK_KERNELS", "tiled"), ("UNMASK_ATTENTION", v)]);
    for v in ["tiles", "flash", "portable"] {
        assert_eq!(tokens(&attention(v)), tokens(&fuse("on")), "UNMASK_ATTENTION={v}");
    }
    one_line(&attention("fast"), "UNMASK_ATTENTION", "use tiles, flash or portable");
}
