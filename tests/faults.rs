//! Faults while loading natively: a model file that shrinks or is rewritten while its weights
//! stream onto the GPU gives a clear error naming the file (and nothing half-loaded is kept:
//! the load returns no model), and the same path loads once the file is whole again.

use std::sync::Arc;
use unmask::gpu::Gpu;
use unmask::load::{load_on, session_config};
use unmask::model::DType;
use unmask::sampler::SamplerOptions;
use unmask::synth::{random_model, tiny_config};

#[test]
fn a_file_truncated_while_streaming_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.gguf");
    let w = random_model(&tiny_config(3, 4, 2, 16, 96, 512), DType::F32, 5);
    let bytes = w.to_gguf(vec![]);
    std::fs::write(&path, &bytes).unwrap();
    let gpu = Arc::new(pollster::block_on(Gpu::new()).unwrap());
    let (kernels, kv) = (gpu.default_kernels(), gpu.default_kv());
    let opts = SamplerOptions::default();
    let load = |cut: &mut dyn FnMut(u64, u64)| load_on(gpu.clone(), &path, None, |_| session_config(64, &opts, kernels, kv), None, &mut |_| {}, cut);

    // Halfway through the weights the file loses its second half.
    let mut cut_at = None;
    let r = load(&mut |done, total| {
        if cut_at.is_none() && done * 2 >= total && done < total {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(bytes.len() as u64 / 2).unwrap();
            cut_at = Some(done);
        }
    });
    assert!(cut_at.is_some(), "the progress never passed half");
    let e = r.err().expect("a load from a truncated file succeeded").to_string();
    assert!(e.contains("model.gguf") && e.contains("changed while it was being read") && e.contains(&bytes.len().to_string()), "{e}");

    // Whole again: the same path loads and runs.
    std::fs::write(&path, &bytes).unwrap();
    let m = load(&mut |_, _| {}).unwrap();
    assert!(m.session(64, &opts, kernels, kv).is_ok());
}
