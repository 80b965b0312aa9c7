//! GGUF k-quants (Q4_K, Q6_K, the bulk of published LLaDA GGUFs): the CPU twin decodes blocks
//! exactly as llama.cpp's own Python package does, and the GPU readers match the CPU twin bit
//! for bit (embedding gather) and in matmuls.
//!
//! `tests/data/kquants_gguf_py.json` holds 3 random blocks of each format and the values that
//! gguf-py 0.19.0 (`gguf.quants.dequantize`, llama.cpp's MIT-licensed Python package) decodes
//! them to, as f32 bit patterns: an independent reading of the published layout.

mod common;
use common::{assert_close, gpu, random_blocks};
use unmask::cpu::ops;
use unmask::engine::GpuWeight;
use unmask::gpu::kernels::{Epilogue, KernelVariant};
use unmask::model::tensor::decode;
use unmask::model::DType;
use unmask::synth::Rng;

fn fixture(name: &str) -> (Vec<u8>, Vec<u32>) {
    let v: serde_json::Value = serde_json::from_str(include_str!("data/kquants_gguf_py.json")).unwrap();
    let hex = v[name]["bytes_hex"].as_str().unwrap();
    let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let bits = v[name]["value_bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u32).collect();
    (bytes, bits)
}

#[test]
fn cpu_twin_decodes_like_gguf_py() {
    for (name, dtype) in [("q4_k", DType::Q4K), ("q6_k", DType::Q6K)] {
        let (bytes, want) = fixture(name);
        let got: Vec<u32> = decode(dtype, &bytes, want.len()).iter().map(|f| f.to_bits()).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn gpu_readers_match_the_cpu_twin_bit_for_bit() {
    let g = gpu();
    for dtype in [DType::Q4K, DType::Q6K] {
        let (rows, dim) = (5, 512);
        let table = random_blocks(dtype, rows, dim, 3);
        let tokens: Vec<u32> = vec![4, 0, 2, 1, 3, 2];
        let want: Vec<u32> = ops::embed(&table, &tokens).iter().map(|f| f.to_bits()).collect();
        let gw = GpuWeight::upload(&g, "table", &table, u64::MAX).unwrap();
        let tb = g.upload("tokens", bytemuck::cast_slice(&tokens)).unwrap();
        let out = g.storage("out", (tokens.len() * dim * 4) as u64).unwrap();
        let (buf, r0, n) = &gw.chunks[0];
        let d = g.embed(dtype, buf, *r0, *n, dim, &tb, tokens.len(), &out).unwrap();
        let mut enc = g.device.create_command_encoder(&Default::default());
        g.record(&mut enc, &g.bind(&[d], None).unwrap());
        let bytes = pollster::block_on(g.submit_and_read(enc, &[(&out, 0, (want.len() * 4) as u64)])).unwrap();
        let got: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        assert_eq!(got, want, "{} dequantized on the GPU", dtype.name());
    }
}

#[test]
fn matmul_with_k_quant_weights() {
    // Both matmul layouts (lavapipe runs both).
    for variant in [KernelVariant::Tiled, KernelVariant::CpuLanes] {
        let g = gpu();
        g.check_kernels(variant).unwrap();
        for (dtype, m, n) in [(DType::Q4K, 7, 33), (DType::Q6K, 67, 9)] {
            let k = 512;
            let w = random_blocks(dtype, n, k, 5);
            let x = Rng::new(6).vec(m * k, 1.0);
            let want = ops::matmul(&x, &w, m);
            let gw = GpuWeight::upload(&g, "w", &w, u64::MAX).unwrap();
            let xb = g.upload_f32("x", &x).unwrap();
            let yb = g.storage("y", (m * n * 4) as u64).unwrap();
            let ds = g.bind(&gw.matmul(&g, variant, &xb, 0, m, &yb, 0, n, Epilogue::Store).unwrap(), None).unwrap();
            let mut enc = g.device.create_command_encoder(&Default::default());
            g.record(&mut enc, &ds);
            let bytes = pollster::block_on(g.submit_and_read(enc, &[(&yb, 0, (m * n * 4) as u64)])).unwrap();
            assert_close(&format!("matmul {} ({})", dtype.name(), variant.name()), &bytemuck::pod_collect_to_vec::<u8, f32>(&bytes), &want, 1e-4);
        }
    }
}
