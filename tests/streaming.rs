//! Streaming loads and the memory plan: a model streamed from its files (GGUF, one safetensors
//! file, sharded safetensors; tiny pieces, split bindings, quantized on the way) is the same
//! model on the GPU as one uploaded from memory; the plan's numbers are the real ones and it
//! refuses what cannot fit with the numbers; a lost device is an error, and a new model loads
//! after it.

mod common;
use common::{gpu, session};
use std::path::Path;
use std::sync::Arc;
use unmask::choice::Noise;
use unmask::engine::{GpuModel, Limits, MemoryPlan, SessionConfig};
use unmask::gpu::kernels::KernelVariant;
use unmask::gpu::Gpu;
use unmask::model::files::{open_path, save_gguf, save_hf_dir};
use unmask::model::index::read_index;
use unmask::model::source::SliceSource;
use unmask::model::{DType, ModelWeights, Quant};
use unmask::synth::{random_model, tiny_config};

const ARGMAX: Noise = Noise::GREEDY;

fn logits(m: &GpuModel, tokens: &[u32]) -> Vec<f32> {
    pollster::block_on(session(m, tokens.len()).forward(tokens, ARGMAX, true)).unwrap().logits.unwrap()
}

fn limits(max_binding: u64) -> Limits {
    Limits { max_binding, max_buffer: u64::MAX, wide_tiles: false }
}

fn plan_session(canvas: usize) -> SessionConfig {
    SessionConfig::new(canvas, KernelVariant::Tiled)
}

/// The safetensors file of `w` split into two shards plus model.safetensors.index.json.
fn write_shards(w: &ModelWeights, dir: &Path) {
    save_hf_dir(w, None, dir).unwrap();
    let whole = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&whole).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut map = serde_json::Map::new();
    for (i, part) in names.chunks(names.len().div_ceil(2)).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView)> = part.iter().map(|n| (n.clone(), st.tensor(n).unwrap())).collect();
        std::fs::write(dir.join(&file), safetensors::serialize(views, None).unwrap()).unwrap();
        for n in part {
            map.insert(n.clone(), file.clone().into());
        }
    }
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({ "metadata": {}, "weight_map": map }).to_string()).unwrap();
}

#[test]
fn streamed_models_equal_uploaded_ones_exactly() {
    // Odd sizes: rows of 64 and 96 columns (Q4_0 rows of 36 and 54 bytes, not multiples of 4).
    let cfg = tiny_config(2, 4, 2, 16, 96, 77);
    let tokens: Vec<u32> = (0..13).map(|i| if i % 4 == 3 { cfg.mask_token_id } else { (i * 11 + 5) % 77 }).collect();
    let tmp = tempfile::tempdir().unwrap();
    let f32w = random_model(&cfg, DType::F32, 11);
    let bf16w = random_model(&cfg, DType::BF16, 12);
    let q8w = random_model(&cfg, DType::Q8_0, 13);
    let (single, sharded, gguf) = (tmp.path().join("single"), tmp.path().join("sharded"), tmp.path().join("m.gguf"));
    save_hf_dir(&f32w, None, &single).unwrap();
    std::fs::create_dir(&sharded).unwrap();
    write_shards(&bf16w, &sharded);
    save_gguf(&q8w, None, &gguf).unwrap();

    for (path, w) in [(&single, &f32w), (&sharded, &bf16w), (&gguf, &q8w)] {
        for quant in [None, Some(Quant::new(DType::Q4_0)), Some(Quant::new(DType::Q8_0))] {
            let files = open_path(path).unwrap();
            let (index, _) = files.index().unwrap();
            let mut host = w.clone();
            if let Some(q) = quant {
                host.convert(q).unwrap();
            }
            host.set_rope(index.rope);
            let want = logits(&GpuModel::upload(gpu(), &host).unwrap(), &tokens);
            // Tiny pieces and bindings of 400 bytes: many pieces and chunks per tensor.
            let g = Arc::new(pollster::block_on(Gpu::new()).unwrap());
            g.cap_bindings(400);
            let mut seen = Vec::new();
            let m = pollster::block_on(GpuModel::load_in_pieces(g.clone(), &index, &files.source, quant, 100, &mut |d, t| seen.push((d, t)))).unwrap();
            g.cap_bindings(0); // the activations of the pass need more than 400 bytes
            let got = logits(&m, &tokens);
            assert!(got == want, "{} as {quant:?}: streamed logits differ from the uploaded model's", path.display());
            let total = index.file_bytes();
            assert!(seen.len() > 20 && seen.windows(2).all(|p| p[0].0 <= p[1].0) && seen.iter().all(|s| s.1 == total), "progress {seen:?}");
            assert_eq!(*seen.last().unwrap(), (total, total));
            // The plan's weight bytes are what the GPU holds.
            let plan = MemoryPlan::new(&index, quant, &plan_session(tokens.len()), limits(400)).unwrap();
            assert_eq!(plan.weight_bytes, m.weight_bytes(), "{} as {quant:?}", path.display());
        }
    }
}

#[test]
fn an_index_reads_only_the_headers() {
    // A GGUF whose header is followed by nothing readable: the index needs only the header.
    let cfg = tiny_config(1, 2, 2, 16, 32, 40);
    let w = random_model(&cfg, DType::Q4_0, 5);
    let bytes = w.to_gguf(vec![]);
    let src = SliceSource { files: vec![("m.gguf".into(), &bytes)] };
    let (index, _) = pollster::block_on(read_index(&src, None)).unwrap();
    let header_end = index.tensors.iter().map(|(_, _, t)| t.offset).min().unwrap();
    assert!(header_end < 2048, "header of {header_end} bytes");
    assert_eq!(index.config.n_layers, 1);
    assert_eq!(index.file_bytes(), index.tensors.iter().map(|(_, _, t)| t.bytes()).sum::<u64>());
}

#[test]
fn the_plan_refuses_with_numbers_and_what_to_change() {
    // An 8B-shaped GGUF cut after 4 kB: the index refuses it (the tensors claim bytes the file
    // does not have) before anything is allocated.
    let g = unmask::synth::identity_gguf(&unmask::synth::llada_8b_config());
    let path = tempfile::tempdir().unwrap();
    let p = path.path().join("8b.gguf");
    g.write_sparse(&p).unwrap();
    let header_len = std::fs::metadata(&p).unwrap().len();
    let cut = std::fs::read(&p).unwrap()[..4096.min(header_len as usize)].to_vec();
    let cut_path = path.path().join("cut.gguf");
    std::fs::write(&cut_path, &cut).unwrap();
    let e = open_path(&cut_path).unwrap().index().err().expect("a truncated 8B header is refused").to_string();
    assert!(e.contains("cut.gguf") && (e.contains("truncated") || e.contains("impossible")), "{e}");

    // The real sparse file indexes; the plan has the real numbers.
    let (index, _) = open_path(&p).unwrap().index().unwrap();
    let plan = MemoryPlan::new(&index, None, &plan_session(256), limits(128 << 20)).unwrap();
    let q4 = 126464u64 * 4096 / 32 * 18;
    assert!(plan.weight_bytes > 4_000_000_000 && plan.weight_bytes < 5_000_000_000, "{}", plan.summary());
    // The widest unsplittable row: a norm vector (4096 f32) beats ffn_down's Q4_0 row (12288 / 32 · 18).
    assert_eq!(plan.widest_row.1, (4096 * 4));
    assert!(plan.widest_row.0.contains("norm") || plan.widest_row.0.contains("ln_f"), "{:?}", plan.widest_row);
    assert!(plan.largest_buffer.1 <= 128 << 20 && q4 > 128 << 20, "split into bindings");
    plan.check(limits(128 << 20), None).unwrap();
    // A canvas whose MLP activations exceed a binding: refused, naming the longest that fits.
    let long = MemoryPlan::new(&index, None, &plan_session(4096), limits(128 << 20)).unwrap();
    let e = long.check(limits(128 << 20), None).unwrap_err().to_string();
    assert!(e.contains("MLP activations") && e.contains("4096-position") && e.contains(&format!("at most {} positions", (128u64 << 20) / (12288 * 4))), "{e}");
    // A memory budget below the total: refused with both numbers and the options.
    let e = plan.check(limits(128 << 20), Some(2_000_000_000)).unwrap_err().to_string();
    assert!(e.contains("4.") && e.contains("2.00 GB") && e.contains("--quant q4_0") && e.contains("--gen-length"), "{e}");
    // A row wider than a binding cannot be split: refused.
    let e = plan.check(limits(4096), None).unwrap_err().to_string();
    assert!(e.contains("one row of") && e.contains("cannot run on this adapter"), "{e}");
}

#[test]
fn a_lost_device_is_an_error_and_a_new_model_loads_after_it() {
    let cfg = tiny_config(1, 2, 2, 16, 32, 40);
    let w = random_model(&cfg, DType::Q4_0, 9);
    let tokens = [1u32, 2, 3, 4];
    let g = Arc::new(pollster::block_on(Gpu::new()).unwrap());
    let m = GpuModel::upload(g.clone(), &w).unwrap();
    let mut s = session(&m, 4);
    let before = pollster::block_on(s.forward(&tokens, ARGMAX, true)).unwrap().logits.unwrap();
    g.device.destroy();
    let e = pollster::block_on(s.forward(&tokens, ARGMAX, true)).err().expect("a lost device is an error").to_string();
    assert!(e.starts_with("GPU error"), "{e}");
    // Loading again on a fresh device works and gives the same model.
    let g2 = Arc::new(pollster::block_on(Gpu::new()).unwrap());
    let m2 = GpuModel::upload(g2, &w).unwrap();
    assert_eq!(logits(&m2, &tokens), before);
}
