//! A model's weights on the host: every tensor of its family's table (`arch.rs`) as a
//! `HostTensor`, read from HF safetensors or llama.cpp GGUF with every shape checked, converted
//! by the family's quantization policy, and written back to either format. In memory it is also
//! a byte source, so putting it on the GPU is the same streaming load as from files.

use crate::error::{Error, Result};
use crate::model::arch::RopeStyle;
use crate::model::arch::{Key, Quant, Role, Tensors};
use crate::model::config::ModelConfig;
use crate::model::gguf::{Gguf, Value};
use crate::model::gguf_write::GgufWriter;
use crate::model::index::{ModelIndex, SafetensorsHeader, TensorRef};
use crate::model::source::ByteSource;
use crate::model::tensor::{DType, HostTensor};

#[derive(Clone)]
pub struct ModelWeights {
    pub config: ModelConfig,
    /// The RoPE pairing that the stored q/k rows expect (NeoX for HF, interleaved for GGUF).
    pub rope: RopeStyle,
    pub tensors: Tensors<HostTensor>,
}

impl ModelWeights {
    /// Reads every tensor of `index` from in-memory files (`files[i]` = file i of the index).
    pub fn from_index(index: &ModelIndex, files: &[&[u8]]) -> Result<Self> {
        let tensors = index.tensors.try_map(|_, _, t: &TensorRef| {
            let mut data = Vec::with_capacity(t.bytes() as usize);
            for (file, offset, len) in t.spans(0, t.rows) {
                let bytes = files.get(file).and_then(|f| f.get(offset as usize..offset as usize + len));
                data.extend_from_slice(bytes.ok_or_else(|| Error::model(t.name.as_str(), "tensor data lies outside its file"))?);
            }
            Ok(HostTensor { dtype: t.dtype, rows: t.rows, cols: t.cols, data })
        })?;
        Ok(ModelWeights { config: index.config.clone(), rope: index.rope, tensors })
    }

    /// From a HF config.json and one or more safetensors files (shards) held in memory.
    pub fn from_safetensors(config_file: &str, config_json: &str, shards: &[(String, &[u8])]) -> Result<Self> {
        let headers = shards.iter().map(|(name, bytes)| SafetensorsHeader::parse(name, bytes, bytes.len() as u64)).collect::<Result<Vec<_>>>()?;
        let index = ModelIndex::from_safetensors(config_file, config_json, &headers)?;
        Self::from_index(&index, &shards.iter().map(|s| s.1).collect::<Vec<_>>())
    }

    /// From a GGUF file held in memory.
    pub fn from_gguf(file: &str, bytes: &[u8]) -> Result<Self> {
        let index = ModelIndex::from_gguf(&Gguf::parse(file, bytes)?)?;
        Self::from_index(&index, &[bytes])
    }

    /// The tensor of `role` in layer `layer`.
    pub fn layer(&self, layer: usize, role: Role) -> &HostTensor {
        &self.tensors[Key::at(layer, role)]
    }

    /// An index of these weights as a `ByteSource`: tensor i is file i, at offset 0.
    pub fn index(&self) -> ModelIndex {
        let mut i = 0;
        let tensors = self.tensors.map(|k, spec, t| {
            let r = TensorRef { name: spec.name(false, k.layer), dtype: t.dtype, rows: t.rows, cols: t.cols, file: i, offset: 0, more: vec![] };
            i += 1;
            r
        });
        ModelIndex { config: self.config.clone(), rope: self.rope, format: "memory", tensors }
    }

    /// Converts each tensor to the format its role takes under `quant` (`TensorSpec::target_dtype`:
    /// norms stay f32; a Q4_0 model keeps its embedding and LM head in Q8_0 unless `quant.pure`).
    pub fn convert(&mut self, quant: Quant) -> Result<()> {
        self.tensors = self.tensors.try_map(|k, spec, t| {
            let d = spec.target_dtype(k.layer, t.dtype, t.cols, Some(quant))?;
            t.convert(d).ok_or_else(|| Error::Input(format!("cannot store {} as {}", spec.describe(k.layer), d.name())))
        })?;
        Ok(())
    }

    /// Reorders the q/k rows of every head for the other RoPE pairing (llama.cpp's permute and its
    /// inverse). Only LLaDA's layouts differ, and it has no q/k biases or norms to permute.
    pub fn set_rope(&mut self, style: RopeStyle) {
        if style == self.rope {
            return;
        }
        debug_assert!(
            self.tensors.iter().all(|(k, _, _)| !matches!(k.role, Role::QBias | Role::KBias | Role::QNorm | Role::KNorm)),
            "a family with q/k biases or norms has one RoPE pairing in both layouts"
        );
        let hd = self.config.head_dim();
        let to_interleaved = style == RopeStyle::Interleaved;
        let perm = |heads: usize| -> Vec<usize> {
            let mut src = vec![0; heads * hd];
            for h in 0..heads {
                for i in 0..hd / 2 {
                    for half in 0..2 {
                        let neox = h * hd + half * hd / 2 + i;
                        let inter = h * hd + 2 * i + half;
                        if to_interleaved {
                            src[inter] = neox
                        } else {
                            src[neox] = inter
                        }
                    }
                }
            }
            src
        };
        let (pq, pk) = (perm(self.config.n_heads), perm(self.config.n_kv_heads));
        self.tensors = self.tensors.map(|k, _, t| match k.role {
            Role::Q => t.gather_rows(&pq),
            Role::K => t.gather_rows(&pk),
            _ => t.clone(),
        });
        self.rope = style;
    }

    /// A single safetensors file with the family's HF names (q/k rows in its HF RoPE order).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut w = self.clone();
        w.set_rope(self.config.family().hf_rope);
        let st_dtype = |d: DType| match d {
            DType::F32 => Ok(safetensors::Dtype::F32),
            DType::F16 => Ok(safetensors::Dtype::F16),
            DType::BF16 => Ok(safetensors::Dtype::BF16),
            q => Err(Error::Input(format!("safetensors cannot hold {} weights; export to GGUF instead", q.name()))),
        };
        // Fused tensors (LLaDA 2's query_key_value): the parts' rows one after another, in table order.
        let mut fused: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (k, spec, t) in w.tensors.iter() {
            if spec.fused.is_some_and(|f| f.skip.is_empty()) {
                let parts: Vec<&HostTensor> =
                    w.tensors.iter().filter(|(k2, s2, _)| k2.layer == k.layer && s2.fused.is_some() && s2.hf == spec.hf).map(|(_, _, t)| t).collect();
                if parts.iter().any(|p| (p.dtype, p.cols) != (t.dtype, t.cols)) {
                    return Err(Error::Input(format!("safetensors export: the parts of `{}` differ in format", spec.name(false, k.layer))));
                }
                let rows = parts.iter().map(|p| p.rows).sum();
                fused.push((spec.name(false, k.layer), st_dtype(t.dtype)?, vec![rows, t.cols], parts.iter().flat_map(|p| p.data.iter().copied()).collect()));
            }
        }
        let mut items: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
        for (name, dtype, shape, data) in &fused {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).map_err(|e| Error::Input(format!("safetensors export: {e}")))?;
            items.push((name.clone(), view));
        }
        for (k, spec, t) in w.tensors.iter() {
            let dtype = st_dtype(t.dtype)?;
            if spec.fused.is_some() {
                continue;
            }
            if spec.experts {
                // One tensor per expert, as HF checkpoints store them.
                let e = w.config.n_experts.max(1);
                let part = t.data.len() / e;
                for (i, bytes) in t.data.chunks_exact(part).enumerate() {
                    let view = safetensors::tensor::TensorView::new(dtype, vec![t.rows / e, t.cols], bytes)
                        .map_err(|e| Error::Input(format!("safetensors export: {e}")))?;
                    items.push((spec.expert_name(k.layer, i), view));
                }
                continue;
            }
            let shape = if spec.shape[0] == crate::model::arch::Dim::One { vec![t.cols] } else { vec![t.rows, t.cols] };
            let view = safetensors::tensor::TensorView::new(dtype, shape, &t.data).map_err(|e| Error::Input(format!("safetensors export: {e}")))?;
            items.push((spec.name(false, k.layer), view));
        }
        safetensors::serialize(items, None).map_err(|e| Error::Input(format!("safetensors export: {e}")))
    }

    /// A GGUF file with llama.cpp's names and metadata for the family, and permuted q/k rows.
    /// `extra` metadata (e.g. the tokenizer) is appended as given.
    pub fn to_gguf(&self, extra: Vec<(String, Value)>) -> Vec<u8> {
        let mut w = self.clone();
        w.set_rope(self.config.family().gguf_rope);
        let mut g = GgufWriter::default();
        for (k, v) in w.config.gguf_metadata() {
            g.meta(&k, v);
        }
        for (k, v) in extra {
            g.meta(&k, v);
        }
        for (k, spec, t) in w.tensors.iter() {
            let dims = if spec.shape[0] == crate::model::arch::Dim::One {
                vec![t.cols as u64]
            } else if spec.experts {
                // llama.cpp's stacked experts: [cols, rows per expert, experts].
                let e = w.config.n_experts.max(1);
                vec![t.cols as u64, (t.rows / e) as u64, e as u64]
            } else {
                vec![t.cols as u64, t.rows as u64]
            };
            g.tensor(&spec.name(true, k.layer), dims, t.clone());
        }
        g.to_bytes()
    }
}

/// In-memory weights read like files: tensor i of `index()` is file i.
impl ByteSource for ModelWeights {
    fn files(&self) -> usize {
        self.tensors.iter().count()
    }
    fn name(&self, file: usize) -> String {
        self.tensors.iter().nth(file).map(|(k, spec, _)| spec.name(false, k.layer)).unwrap_or_default()
    }
    fn len(&self, file: usize) -> u64 {
        self.tensors.iter().nth(file).map(|(_, _, t)| t.data.len() as u64).unwrap_or(0)
    }
    async fn read(&self, file: usize, offset: u64, len: usize) -> Result<Vec<u8>> {
        let t = self.tensors.iter().nth(file).map(|(_, _, t)| t).ok_or_else(|| Error::Input(format!("no tensor {file}")))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len) {
            Some(end) if end <= t.data.len() => Ok(t.data[start..end].to_vec()),
            _ => Err(Error::Input(format!("bytes {offset}..+{len} asked of a tensor of {}", t.data.len()))),
        }
    }
}
