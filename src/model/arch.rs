//! The architecture tables: for each model family, every tensor it has (its role, its name in
//! HF safetensors and in llama.cpp GGUF files, its shape rule, whether it may be absent, how
//! `--quant` treats it) and the family's facts (GGUF architecture string, chat format, whether
//! logits are shifted, default mask id). Every stage (header index → host tensors → GPU
//! weights) keeps tensors in one generic container, `Tensors<T>`, keyed by (layer, role).
//! The tables themselves are in `families.rs`; adding a family is one more table plus its tests.

use crate::error::{Error, Result};
use crate::model::tensor::DType;
use serde::{Deserialize, Serialize};
use std::ops::Index;

/// What a tensor is for. The forward pass asks for tensors by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Embed,
    AttnNorm,
    Q,
    K,
    V,
    O,
    FfnNorm,
    /// SwiGLU gate (LLaDA's `ff_proj`).
    Gate,
    Up,
    /// SwiGLU down projection (LLaDA's per-block `ff_out`).
    Down,
    FinalNorm,
    LmHead,
    /// Biases of the q/k/v projections (Qwen2 / Dream).
    QBias,
    KBias,
    VBias,
    /// QK-norm: RMSNorm weights applied to queries and keys before RoPE (per head, or over the
    /// whole projection, as the family's shape rule says).
    QNorm,
    KNorm,
    /// The MoE router (`ffn_gate_inp`): one row of logits weights per expert.
    Router,
    /// Every expert's SwiGLU matrices stacked by expert (`ffn_{gate,up,down}_exps`): expert e's
    /// rows are `e·R .. (e+1)·R` of a tensor of E·R rows.
    GateExps,
    UpExps,
    DownExps,
    /// A per-expert bias added to the router's scores for choosing experts only (LLaDA 2's
    /// `expert_bias`; the weights use the unbiased scores).
    ExpertBias,
    /// Shared experts (LLaDA 2): one dense SwiGLU that every position of a MoE layer also runs,
    /// added to the routed experts' output.
    SharedGate,
    SharedUp,
    SharedDown,
    /// Bias of the attention output projection (LLaDA 2's `dense.bias` when `use_bias`).
    OBias,
}

const ROLES: usize = 26;
const _: () = assert!(Role::OBias as usize + 1 == ROLES);

/// Which pairs of a head's dimensions RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RopeStyle {
    /// rotate_half: pairs (i, i + d/2). What the HF LLaDA weights expect.
    NeoX,
    /// pairs (2i, 2i+1): what llama.cpp applies to its permuted q/k rows.
    Interleaved,
}

/// A length in a shape rule, resolved against the config (`ModelConfig::dim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    One,
    /// d_model
    Model,
    /// n_heads · head_dim (the queries and the attention output)
    Q,
    /// n_kv_heads · head_dim
    Kv,
    /// head_dim (per-head QK-norm weights)
    Head,
    /// the MLP's hidden size
    Hidden,
    /// rows of the embedding / LM head
    Vocab,
    /// the number of routed experts (router rows)
    Experts,
    /// one expert's hidden size
    ExpertHidden,
    /// experts × one expert's hidden size (stacked gate/up rows)
    ExpertsHidden,
    /// experts × d_model (stacked down rows)
    ExpertsModel,
    /// shared experts × one expert's hidden size (LLaDA 2's shared MLP)
    SharedHidden,
    /// n_heads · head_dim + 2 · n_kv_heads · head_dim (a fused query_key_value projection)
    Qkv,
}

/// How a tensor is stored on the GPU when a quantization is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantPolicy {
    /// Norm vectors: always f32 on the GPU (the kernels read them as f32).
    F32,
    /// Ordinary matrices: the asked format.
    Matrix,
    /// The embedding and LM head: Q8_0 when Q4_0 is asked (unless `pure`), as llama.cpp keeps
    /// its output tensor wider. Their 4-bit error reaches every position (the mask token's row
    /// feeds every masked position; the head makes every logit): on the demo model this cut the
    /// F16-vs-Q4_0 KL divergence on masked rows from 0.53 to 0.09 nats.
    Wide,
}

/// A quantization asked for at load or conversion: the format, and whether the embedding and
/// LM head take it too (`pure`) instead of staying wider (`QuantPolicy::Wide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quant {
    pub dtype: DType,
    pub pure: bool,
}

impl Quant {
    pub fn new(dtype: DType) -> Quant {
        Quant { dtype, pure: false }
    }
}

/// Whether a tensor comes once before the layers, once per layer, or once after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    First,
    Layer,
    Last,
}

/// One tensor of a family.
#[derive(Debug, Clone, Copy)]
pub struct TensorSpec {
    pub role: Role,
    pub place: Place,
    /// The engine's short name for it (messages, reports).
    pub what: &'static str,
    /// Name in HF safetensors; `{i}` is the layer index.
    pub hf: &'static str,
    /// Name in llama.cpp GGUF files; `{i}` is the layer index.
    pub gguf: &'static str,
    /// [rows, cols] (rows = output features for a linear layer; 1 for a vector).
    pub shape: [Dim; 2],
    /// A model may lack it (e.g. an optional bias); the forward pass then skips it.
    pub optional: bool,
    pub quant: QuantPolicy,
    /// Stacked experts: in HF files one tensor per expert (`{e}` in `hf`), in GGUF one 3-D tensor.
    pub experts: bool,
    /// In HF files, part of a fused tensor (see `Fused`); GGUF files keep the parts apart.
    pub fused: Option<Fused>,
}

/// Rows of a fused HF tensor (LLaDA 2's `query_key_value`): the tensor named `hf` has `whole`
/// rows, and this one is the `shape[0]` rows after the rows of the parts in `skip`.
#[derive(Debug, Clone, Copy)]
pub struct Fused {
    pub whole: Dim,
    pub skip: &'static [Dim],
}

impl TensorSpec {
    /// The same spec, marked optional.
    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The same spec, marked as stacked experts.
    pub const fn experts(mut self) -> Self {
        self.experts = true;
        self
    }

    /// The same spec, as the rows after `skip` of a fused HF tensor of `whole` rows.
    pub const fn fused(mut self, whole: Dim, skip: &'static [Dim]) -> Self {
        self.fused = Some(Fused { whole, skip });
        self
    }
}

/// The chat format a family's instruct models use (what its Jinja `chat_template` writes):
/// `bos`, then each turn as `header` (with `{role}` replaced by the role's name) + content +
/// `end`, then the assistant's header, where the answer starts.
#[derive(Debug, Clone, Copy)]
pub struct ChatFormat {
    pub bos: &'static str,
    pub header: &'static str,
    pub end: &'static str,
    /// The names the format gives the system, user and assistant roles.
    pub roles: [&'static str; 3],
}

/// A model family: everything about it that is not a number in the config.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    /// `general.architecture` in GGUF files.
    pub gguf_arch: &'static str,
    /// `model_type` values of HF config.json files.
    pub hf_model_types: &'static [&'static str],
    pub tensors: &'static [TensorSpec],
    /// The RoPE pairing of HF weights.
    pub hf_rope: RopeStyle,
    /// The RoPE pairing of llama.cpp's GGUF files (its converter permutes q/k rows for
    /// interleaved RoPE on LLaMA-like families, not on NeoX ones such as Qwen2).
    pub gguf_rope: RopeStyle,
    /// The token at position i is read from the logits at i − 1 (Dream); default when the
    /// file does not say (GGUF `diffusion.shift_logits`).
    pub shift_logits: bool,
    /// MoE families: whether the top-k router weights are renormalised when the config does not say.
    pub norm_topk_prob: bool,
    /// The reference ignores the config's `norm_topk_prob` and always uses the default.
    pub norm_topk_prob_fixed: bool,
    pub default_mask_token: u32,
    /// Block-causal attention (LLaDA 2): a position sees the positions of its own block of
    /// this many and of the blocks before it; 0 = fully bidirectional. The sampler's blocks
    /// must be these blocks.
    pub attention_block: usize,
    pub chat: ChatFormat,
    /// The Jinja chat template written into GGUF files we make (llama.cpp's key).
    pub chat_template: &'static str,
}

pub use super::families::{DREAM, FAMILIES, LLADA, LLADA2, LLADA_MOE, RND1};

impl Family {
    /// By name (`ModelConfig::family`).
    pub fn named(name: &str) -> Option<&'static Family> {
        FAMILIES.iter().copied().find(|f| f.name == name)
    }

    pub fn by_gguf_arch(arch: &str) -> Option<&'static Family> {
        FAMILIES.iter().copied().find(|f| f.gguf_arch == arch)
    }

    pub fn by_hf_model_type(t: &str) -> Option<&'static Family> {
        FAMILIES.iter().copied().find(|f| f.hf_model_types.contains(&t))
    }

    /// The spec of `role`.
    pub fn spec(&self, role: Role) -> Option<&'static TensorSpec> {
        self.tensors.iter().find(|s| s.role == role)
    }

    /// Every tensor of a model with `layers` layers, in file and upload order: the `First`
    /// tensors, each layer's, then the `Last` ones.
    pub fn keys(&self, layers: usize) -> Vec<(Key, &'static TensorSpec)> {
        let pick = |p: Place| self.tensors.iter().filter(move |s| s.place == p);
        let mut out: Vec<(Key, &'static TensorSpec)> = pick(Place::First).map(|s| (Key { layer: None, role: s.role }, s)).collect();
        for i in 0..layers {
            out.extend(pick(Place::Layer).map(|s| (Key { layer: Some(i), role: s.role }, s)));
        }
        out.extend(pick(Place::Last).map(|s| (Key { layer: None, role: s.role }, s)));
        out
    }
}

/// Names a tensor of a model: its layer (None for the embedding, final norm, head) and role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub layer: Option<usize>,
    pub role: Role,
}

impl Key {
    pub fn global(role: Role) -> Key {
        Key { layer: None, role }
    }

    pub fn at(layer: usize, role: Role) -> Key {
        Key { layer: Some(layer), role }
    }
}

impl TensorSpec {
    /// The tensor's name in one format ("safetensors" or "gguf") for layer `layer`. For a
    /// stacked-experts tensor in HF files, the name of expert 0 (see `expert_name`).
    pub fn name(&self, gguf: bool, layer: Option<usize>) -> String {
        let t = if gguf { self.gguf } else { self.hf };
        let t = match layer {
            Some(i) => t.replace("{i}", &i.to_string()),
            None => t.to_string(),
        };
        t.replace("{e}", "0")
    }

    /// The HF name of expert `e`'s part of a stacked-experts tensor.
    pub fn expert_name(&self, layer: Option<usize>, e: usize) -> String {
        self.hf_name_of_expert(layer, &e.to_string())
    }

    /// The HF name with `{e}` replaced by `e` ("*" names every expert in messages).
    pub fn hf_name_of_expert(&self, layer: Option<usize>, e: &str) -> String {
        let t = match layer {
            Some(i) => self.hf.replace("{i}", &i.to_string()),
            None => self.hf.to_string(),
        };
        t.replace("{e}", e)
    }

    /// What it is, for people: "the embedding", "layer 3 q_proj".
    pub fn describe(&self, layer: Option<usize>) -> String {
        match layer {
            Some(i) => format!("layer {i} {}", self.what),
            None => format!("the {}", self.what),
        }
    }

    /// The format this tensor takes on the GPU or in a file: `stored` unless `quant` asks for
    /// another (see `QuantPolicy`); block formats need whole blocks per row.
    pub fn target_dtype(&self, layer: Option<usize>, stored: DType, cols: usize, quant: Option<Quant>) -> Result<DType> {
        let want = match (self.quant, quant) {
            (QuantPolicy::F32, _) => DType::F32,
            (_, None) => stored,
            (QuantPolicy::Wide, Some(Quant { dtype: DType::Q4_0, pure: false })) if matches!(stored, DType::F32 | DType::F16 | DType::BF16 | DType::Q8_0) => {
                DType::Q8_0
            }
            (_, Some(q)) => q.dtype,
        };
        if want == stored {
            return Ok(want);
        }
        if matches!(want, DType::Q4K | DType::Q6K) {
            return Err(Error::Input(format!("{}: k-quants are read from GGUF files, not made here; use q4_0 or q8_0", want.name())));
        }
        want.row_bytes(cols).ok_or_else(|| {
            Error::Input(format!("cannot store {} ({cols} columns) as {}: block formats need a multiple of 32 columns", self.describe(layer), want.name()))
        })?;
        Ok(want)
    }
}

/// One value per tensor of a model, by `Key`, kept in the family's order. The same container
/// holds a model at every stage: `TensorRef`s (headers), `HostTensor`s, GPU weights, or any
/// per-tensor figure (chunk counts).
#[derive(Debug, Clone)]
pub struct Tensors<T> {
    pub family: &'static Family,
    order: Vec<Key>,
    global: [Option<T>; ROLES],
    layers: Vec<[Option<T>; ROLES]>,
}

impl<T> Tensors<T> {
    /// Collects `get(key, spec)` for every tensor of `family` with `layers` layers; a required
    /// tensor for which `get` gives None is an error naming it (via `missing`).
    pub fn assemble(
        family: &'static Family,
        layers: usize,
        mut get: impl FnMut(Key, &'static TensorSpec) -> Result<Option<T>>,
        missing: impl Fn(Key, &TensorSpec) -> Error,
    ) -> Result<Self> {
        let mut t =
            Tensors { family, order: Vec::new(), global: std::array::from_fn(|_| None), layers: (0..layers).map(|_| std::array::from_fn(|_| None)).collect() };
        for (key, spec) in family.keys(layers) {
            match get(key, spec)? {
                Some(v) => {
                    t.order.push(key);
                    *t.slot_mut(key) = Some(v);
                }
                None if spec.optional => {}
                None => return Err(missing(key, spec)),
            }
        }
        Ok(t)
    }

    fn slot_mut(&mut self, k: Key) -> &mut Option<T> {
        match k.layer {
            None => &mut self.global[k.role as usize],
            Some(i) => &mut self.layers[i][k.role as usize],
        }
    }

    pub fn get(&self, k: Key) -> Option<&T> {
        match k.layer {
            None => self.global[k.role as usize].as_ref(),
            Some(i) => self.layers.get(i)?[k.role as usize].as_ref(),
        }
    }

    pub fn get_mut(&mut self, k: Key) -> Option<&mut T> {
        self.slot_mut(k).as_mut()
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Every present tensor in the family's order, with its spec.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &'static TensorSpec, &T)> + '_ {
        self.order.iter().map(move |&k| (k, self.family.spec(k.role).expect("keys come from the family"), self.get(k).expect("ordered keys are present")))
    }

    /// The same tensors, each mapped by `f` (e.g. header → data → GPU buffer).
    pub fn try_map<U>(&self, mut f: impl FnMut(Key, &'static TensorSpec, &T) -> Result<U>) -> Result<Tensors<U>> {
        let mut out = Tensors {
            family: self.family,
            order: self.order.clone(),
            global: std::array::from_fn(|_| None),
            layers: (0..self.layers.len()).map(|_| std::array::from_fn(|_| None)).collect(),
        };
        for (k, spec, v) in self.iter() {
            *out.slot_mut(k) = Some(f(k, spec, v)?);
        }
        Ok(out)
    }

    pub fn map<U>(&self, mut f: impl FnMut(Key, &'static TensorSpec, &T) -> U) -> Tensors<U> {
        self.try_map(|k, s, v| Ok(f(k, s, v))).expect("infallible")
    }
}

impl<T> Index<Key> for Tensors<T> {
    type Output = T;
    /// A tensor the family requires (the assembly checked it is there).
    fn index(&self, k: Key) -> &T {
        self.get(k).unwrap_or_else(|| panic!("the model has no {k:?}: the forward pass asked for a tensor its family does not require"))
    }
}

impl<T> Index<Role> for Tensors<T> {
    type Output = T;
    fn index(&self, r: Role) -> &T {
        &self[Key::global(r)]
    }
}
