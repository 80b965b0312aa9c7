//! The LLaDA weights on the host, by role (embedding, per-layer projections, norms, LM head),
//! assembled from HF safetensors or llama.cpp GGUF names with every shape checked, and written
//! back to either format.

use crate::error::{Error, Result};
use crate::model::config::{LladaConfig, RopeStyle};
use crate::model::gguf::{Gguf, Value};
use crate::model::gguf_write::GgufWriter;
use crate::model::index::{ModelIndex, SafetensorsHeader, TensorRef, GGUF, HF};
use crate::model::tensor::{DType, HostTensor};
use std::collections::HashMap;

#[derive(Clone)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub wq: HostTensor,
    pub wk: HostTensor,
    pub wv: HostTensor,
    pub wo: HostTensor,
    pub ff_norm: Vec<f32>,
    /// SwiGLU gate (LLaDA's `ff_proj`).
    pub w_gate: HostTensor,
    pub w_up: HostTensor,
    /// SwiGLU down projection (LLaDA's per-block `ff_out`).
    pub w_down: HostTensor,
}

/// Roles that `map_matrices` names its matrices by (also in error messages).
const EMBEDDING: &str = "embedding";
const LM_HEAD: &str = "LM head";

#[derive(Clone)]
pub struct ModelWeights {
    pub config: LladaConfig,
    /// The RoPE pairing that the stored q/k rows expect (NeoX for HF, interleaved for GGUF).
    pub rope: RopeStyle,
    pub embed: HostTensor,
    pub layers: Vec<LayerWeights>,
    pub ln_f: Vec<f32>,
    pub lm_head: HostTensor,
}

impl ModelWeights {
    /// Reads every tensor of `index` from in-memory files (`files[i]` = file i of the index).
    pub fn from_index(index: &ModelIndex, files: &[&[u8]]) -> Result<Self> {
        let get = |t: &TensorRef| -> Result<HostTensor> {
            let bytes = files.get(t.file).and_then(|f| f.get(t.offset as usize..(t.offset + t.bytes()) as usize));
            let bytes = bytes.ok_or_else(|| Error::model(t.name.as_str(), "tensor data lies outside its file"))?;
            Ok(HostTensor { dtype: t.dtype, rows: t.rows, cols: t.cols, data: bytes.to_vec() })
        };
        let mut layers = Vec::with_capacity(index.layers.len());
        for l in &index.layers {
            layers.push(LayerWeights {
                attn_norm: get(&l.attn_norm)?.to_f32(),
                wq: get(&l.wq)?,
                wk: get(&l.wk)?,
                wv: get(&l.wv)?,
                wo: get(&l.wo)?,
                ff_norm: get(&l.ff_norm)?.to_f32(),
                w_gate: get(&l.w_gate)?,
                w_up: get(&l.w_up)?,
                w_down: get(&l.w_down)?,
            });
        }
        Ok(ModelWeights { config: index.config.clone(), rope: index.rope, embed: get(&index.embed)?, layers, ln_f: get(&index.ln_f)?.to_f32(), lm_head: get(&index.lm_head)? })
    }

    /// From a HF config.json and one or more safetensors files (shards) held in memory.
    pub fn from_safetensors(config_file: &str, config_json: &str, shards: &[(String, &[u8])]) -> Result<Self> {
        let headers = shards.iter().map(|(name, bytes)| SafetensorsHeader::parse(name, bytes, bytes.len() as u64)).collect::<Result<Vec<_>>>()?;
        let index = ModelIndex::from_safetensors(config_file, config_json, &headers)?;
        Self::from_index(&index, &shards.iter().map(|s| s.1).collect::<Vec<_>>())
    }

    /// From a llama.cpp GGUF file (architecture `llada`) held in memory.
    pub fn from_gguf(file: &str, bytes: &[u8]) -> Result<Self> {
        let index = ModelIndex::from_gguf(&Gguf::parse(file, bytes)?)?;
        Self::from_index(&index, &[bytes])
    }

    /// Every weight matrix as (name in HF terms, tensor), for reports and export.
    pub fn matrices(&self) -> Vec<(String, &HostTensor)> {
        let mut out = vec![(HF.embed.to_string(), &self.embed)];
        for (i, l) in self.layers.iter().enumerate() {
            let n = (HF.layer)(i);
            for (k, t) in [(1, &l.wq), (2, &l.wk), (3, &l.wv), (4, &l.wo), (6, &l.w_gate), (7, &l.w_up), (8, &l.w_down)] {
                out.push((n[k].clone(), t));
            }
        }
        out.push((HF.lm_head.to_string(), &self.lm_head));
        out
    }

    fn map_matrices(&mut self, mut f: impl FnMut(&str, &HostTensor) -> Result<HostTensor>) -> Result<()> {
        self.embed = f(EMBEDDING, &self.embed)?;
        self.lm_head = f(LM_HEAD, &self.lm_head)?;
        for l in &mut self.layers {
            for t in [&mut l.wq, &mut l.wk, &mut l.wv, &mut l.wo, &mut l.w_gate, &mut l.w_up, &mut l.w_down] {
                *t = f("layer weight", t)?;
            }
        }
        Ok(())
    }

    /// Converts every matrix to `dtype` (e.g. quantizes to Q4_0 while loading).
    pub fn convert(&mut self, dtype: DType) -> Result<()> {
        self.convert_each(|_, _| dtype)
    }

    /// Converts for a file (`unmask convert --quant`): every matrix to `dtype`, except that a
    /// Q4_0 file keeps the embedding and the LM head in Q8_0 (when they are stored wider), as
    /// llama.cpp's quantizer keeps its output tensor at higher precision. Their 4-bit error
    /// reaches every position: the mask token's embedding row feeds every masked position and
    /// the head makes every logit. On the demo model this cut the F16-vs-Q4_0 KL divergence on
    /// masked rows from 0.53 to 0.09 nats, for 1.1 MB more (8B: +0.5 GB on 4.5 GB).
    /// `pure` converts them too.
    pub fn convert_for_file(&mut self, dtype: DType, pure: bool) -> Result<()> {
        let keep_wide = dtype == DType::Q4_0 && !pure;
        self.convert_each(|what, t| {
            let wide = matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::Q8_0);
            if keep_wide && wide && matches!(what, EMBEDDING | LM_HEAD) { DType::Q8_0 } else { dtype }
        })
    }

    /// Converts each matrix to the format `pick` names for it (given its role and tensor).
    fn convert_each(&mut self, pick: impl Fn(&str, &HostTensor) -> DType) -> Result<()> {
        self.map_matrices(|what, t| {
            let dtype = pick(what, t);
            t.convert(dtype).ok_or_else(|| Error::Input(format!("cannot store the {what} ({} columns) as {}: block formats need a multiple of 32 columns", t.cols, dtype.name())))
        })
    }

    /// Reorders the q/k rows of every head for the other RoPE pairing (llama.cpp's permute and its inverse).
    pub fn set_rope(&mut self, style: RopeStyle) {
        if style == self.rope {
            return;
        }
        let hd = self.config.head_dim();
        let to_interleaved = style == RopeStyle::Interleaved;
        let perm = |heads: usize| -> Vec<usize> {
            let mut src = vec![0; heads * hd];
            for h in 0..heads {
                for i in 0..hd / 2 {
                    for half in 0..2 {
                        let neox = h * hd + half * hd / 2 + i;
                        let inter = h * hd + 2 * i + half;
                        if to_interleaved { src[inter] = neox } else { src[neox] = inter }
                    }
                }
            }
            src
        };
        let (pq, pk) = (perm(self.config.n_heads), perm(self.config.n_kv_heads));
        for l in &mut self.layers {
            l.wq = l.wq.gather_rows(&pq);
            l.wk = l.wk.gather_rows(&pk);
        }
        self.rope = style;
    }

    /// A single safetensors file with HF LLaDA names (q/k rows in NeoX order).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut w = self.clone();
        w.set_rope(RopeStyle::NeoX);
        let mut items: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
        let norms: Vec<(String, Vec<u8>)> = std::iter::once((HF.ln_f.to_string(), bytemuck::cast_slice(&w.ln_f).to_vec()))
            .chain(w.layers.iter().enumerate().flat_map(|(i, l)| {
                let n = (HF.layer)(i);
                [(n[0].clone(), bytemuck::cast_slice(&l.attn_norm).to_vec()), (n[5].clone(), bytemuck::cast_slice(&l.ff_norm).to_vec())]
            }))
            .collect();
        fn view(t: &[u8], dtype: safetensors::Dtype, shape: Vec<usize>) -> Result<safetensors::tensor::TensorView<'_>> {
            safetensors::tensor::TensorView::new(dtype, shape, t).map_err(|e| Error::Input(format!("safetensors export: {e}")))
        }
        for (name, bytes) in &norms {
            items.push((name.clone(), view(bytes, safetensors::Dtype::F32, vec![bytes.len() / 4])?));
        }
        for (name, t) in w.matrices() {
            let dtype = match t.dtype {
                DType::F32 => safetensors::Dtype::F32,
                DType::F16 => safetensors::Dtype::F16,
                DType::BF16 => safetensors::Dtype::BF16,
                q => return Err(Error::Input(format!("safetensors cannot hold {} weights; export to GGUF instead", q.name()))),
            };
            items.push((name, view(&t.data, dtype, vec![t.rows, t.cols])?));
        }
        safetensors::serialize(items, None).map_err(|e| Error::Input(format!("safetensors export: {e}")))
    }

    /// A GGUF file with llama.cpp's `llada` names, metadata and permuted q/k rows.
    /// `extra` metadata (e.g. the tokenizer) is appended as given.
    pub fn to_gguf(&self, extra: Vec<(String, Value)>) -> Vec<u8> {
        let mut w = self.clone();
        w.set_rope(RopeStyle::Interleaved);
        let c = &w.config;
        let mut g = GgufWriter::default();
        g.meta("general.architecture", Value::Str("llada".into()))
            .meta("llada.block_count", Value::U32(c.n_layers as u32))
            .meta("llada.context_length", Value::U32(c.max_sequence_length as u32))
            .meta("llada.embedding_length", Value::U32(c.d_model as u32))
            .meta("llada.feed_forward_length", Value::U32(c.mlp_hidden_size as u32))
            .meta("llada.attention.head_count", Value::U32(c.n_heads as u32))
            .meta("llada.attention.head_count_kv", Value::U32(c.n_kv_heads as u32))
            .meta("llada.rope.freq_base", Value::F32(c.rope_theta))
            .meta("llada.rope.dimension_count", Value::U32(c.head_dim() as u32))
            .meta("llada.attention.layer_norm_rms_epsilon", Value::F32(c.rms_norm_eps))
            .meta("llada.attention.causal", Value::Bool(false))
            .meta("diffusion.shift_logits", Value::Bool(false))
            .meta("tokenizer.ggml.mask_token_id", Value::U32(c.mask_token_id));
        for (key, id) in [("tokenizer.ggml.eos_token_id", c.eos_token_id), ("tokenizer.ggml.bos_token_id", c.bos_token_id), ("tokenizer.ggml.eot_token_id", c.eot_token_id)] {
            if let Some(id) = id {
                g.meta(key, Value::U32(id));
            }
        }
        for (k, v) in extra {
            g.meta(&k, v);
        }
        let mat = |t: &HostTensor| (vec![t.cols as u64, t.rows as u64], t.clone());
        let vec1 = |v: &[f32]| (vec![v.len() as u64], HostTensor::from_f32(1, v.len(), v));
        let mut put = |name: String, (dims, t): (Vec<u64>, HostTensor)| {
            g.tensor(&name, dims, t);
        };
        put(GGUF.embed.into(), mat(&w.embed));
        for (i, l) in w.layers.iter().enumerate() {
            let n = (GGUF.layer)(i);
            put(n[0].clone(), vec1(&l.attn_norm));
            put(n[1].clone(), mat(&l.wq));
            put(n[2].clone(), mat(&l.wk));
            put(n[3].clone(), mat(&l.wv));
            put(n[4].clone(), mat(&l.wo));
            put(n[5].clone(), vec1(&l.ff_norm));
            put(n[6].clone(), mat(&l.w_gate));
            put(n[7].clone(), mat(&l.w_up));
            put(n[8].clone(), mat(&l.w_down));
        }
        put(GGUF.ln_f.into(), vec1(&w.ln_f));
        put(GGUF.lm_head.into(), mat(&w.lm_head));
        g.to_bytes()
    }

    /// Bytes of weights per dtype, for `unmask info`.
    pub fn bytes_by_dtype(&self) -> HashMap<&'static str, usize> {
        let mut m = HashMap::new();
        for (_, t) in self.matrices() {
            *m.entry(t.dtype.name()).or_insert(0) += t.data.len();
        }
        let norms = 4 * self.ln_f.len() * (1 + 2 * self.layers.len());
        *m.entry("F32").or_insert(0) += norms;
        m
    }
}

/// Reads the `llada.*` metadata of a GGUF file into a config.
pub fn config_from_gguf(g: &Gguf) -> Result<LladaConfig> {
    let file = g.file.as_str();
    let arch = g.get("general.architecture").and_then(Value::as_str).unwrap_or("");
    if arch != "llada" {
        return Err(Error::model(file, format!("general.architecture is {arch:?}; only \"llada\" models are supported")));
    }
    let num = |key: &str| g.get(key).and_then(Value::as_u64).map(|v| v.min(usize::MAX as u64) as usize);
    let need = |key: &str| num(key).ok_or_else(|| Error::model(file, format!("metadata `{key}` is missing")));
    let vocab = g
        .tensor("token_embd.weight")
        .and_then(|t| t.dims.get(1).copied())
        .ok_or_else(|| Error::model(file, "tensor `token_embd.weight` is missing or not 2-D"))?;
    let n_heads = need("llada.attention.head_count")?;
    let id = |key: &str| num(key).map(|v| v as u32);
    let cfg = LladaConfig {
        d_model: need("llada.embedding_length")?,
        n_layers: need("llada.block_count")?,
        n_heads,
        n_kv_heads: num("llada.attention.head_count_kv").unwrap_or(n_heads),
        mlp_hidden_size: need("llada.feed_forward_length")?,
        vocab_size: vocab.min(usize::MAX as u64) as usize,
        rope_theta: g.get("llada.rope.freq_base").and_then(Value::as_f64).unwrap_or(10000.0) as f32,
        rms_norm_eps: g.get("llada.attention.layer_norm_rms_epsilon").and_then(Value::as_f64).unwrap_or(1e-5) as f32,
        max_sequence_length: num("llada.context_length").unwrap_or(4096),
        mask_token_id: id("tokenizer.ggml.mask_token_id").unwrap_or(crate::model::config::LLADA_MASK_TOKEN),
        eos_token_id: id("tokenizer.ggml.eos_token_id"),
        bos_token_id: id("tokenizer.ggml.bos_token_id"),
        eot_token_id: id("tokenizer.ggml.eot_token_id"),
    };
    cfg.validate(file)?;
    Ok(cfg)
}
