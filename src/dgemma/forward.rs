//! DiffusionGemma's forward pass on the CPU, as plainly as docs/diffusion_gemma.md §4 states
//! it: the encoder (causal, appends K/V to the cache) and the decoder (one canvas,
//! bidirectional over the cache and itself, never writes it; optional self-conditioning),
//! over one set of weights. The reference the GPU path will be tested against.

use super::config::{Layer, Rope};
use super::weights::{DgWeights, LayerWeights};
use crate::cpu::ops;
use crate::gpu::kernels::KvType;
use crate::model::config::Routing;
use crate::model::{DType, HostTensor};

/// Per layer, the K and V (after their norms and RoPE) of every position encoded so far.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// Positions encoded: 0 .. len.
    pub len: usize,
    /// Per layer `[len, kv · head_dim]`.
    pub k: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    /// How the GPU stores K/V: f16 rounds every K and V value once, the decoder's own too
    /// (the GPU session writes them into the cache and attention reads them from there).
    pub kv: KvType,
    /// Every matmul's inputs rounded to f16 first (x clamped to ±65504), as the GPU's matmuls
    /// on cooperative matrices round them (the dense ones, the router, the experts, the head).
    pub f16_inputs: bool,
}

impl Cache {
    /// An empty cache storing K/V as `kv`.
    pub fn new(kv: KvType) -> Cache {
        Cache { kv, ..Cache::default() }
    }

    /// The twin of sessions whose matmuls run on cooperative matrices.
    pub fn with_f16_matmul_inputs(self) -> Cache {
        Cache { f16_inputs: true, ..self }
    }
}

/// `x · Wᵀ` for `m` rows; both inputs rounded to f16 first where `f16` (`Cache::f16_inputs`).
fn mm(x: &[f32], w: &HostTensor, m: usize, f16: bool) -> Vec<f32> {
    match f16 {
        true => ops::matmul_f16_inputs(x, w, m),
        false => ops::matmul(x, w, m),
    }
}

/// `x / sqrt(mean(x²) + eps)` per row of `dim` values, times `w` when given.
fn rms(x: &[f32], dim: usize, w: Option<&[f32]>, eps: f32) -> Vec<f32> {
    let ones;
    let w = match w {
        Some(w) => w,
        None => {
            ones = vec![1.0; dim];
            &ones
        }
    };
    ops::rmsnorm(x, w, eps)
}

/// `down(gelu_tanh(gate x) · up x)` for `m` rows (`f16`: as `mm`).
fn mlp(x: &[f32], m: usize, [gate, up, down]: [&HostTensor; 3], f16: bool) -> Vec<f32> {
    let a = ops::glu(&mm(x, gate, m, f16), &mm(x, up, m, f16), ops::Activation::GeluTanh);
    mm(&a, down, m, f16)
}

/// Rotate-half RoPE of `heads` heads of `hd` per row, row r at position `pos[r]`.
fn rope(x: &mut [f32], pos: &[usize], heads: usize, hd: usize, r: &Rope) {
    let spec = r.spec(hd);
    let pos: Vec<u32> = pos.iter().map(|&p| p as u32).collect();
    ops::rope(x, &pos, heads, hd, spec, crate::model::RopeStyle::NeoX);
}

/// Which keys a query sees: the encoder's (causal; sliding: the last W positions up to the
/// query's own) or the decoder's (sliding: the last W − 1 cached positions and the whole canvas;
/// full: everything), as the attention kernel's mask; scores are not scaled.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Encoder,
    Decoder { cached: usize },
}

pub(crate) fn mask(mode: Mode, l: &Layer, w: usize, q0: usize) -> ops::AttnMask {
    let m = ops::AttnMask { q0, scale: Some(1.0), ..ops::AttnMask::FULL };
    match (mode, l.full) {
        (Mode::Encoder, true) => ops::AttnMask { causal: true, ..m },
        (Mode::Encoder, false) => ops::AttnMask { causal: true, window: w, ..m },
        (Mode::Decoder { .. }, true) => m,
        (Mode::Decoder { cached }, false) => ops::AttnMask { key_lo: (cached + 1).saturating_sub(w), ..m },
    }
}

/// One layer on rows `x` `[t, H]` at positions `pos`; `keys`/`vals` are the earlier positions'
/// K/V (positions 0 .. keys.len()/kvd), to which this call's own are appended for attention.
/// Returns the new K and V rows (as stored: rounded to `kv`); `f16`: the matmuls as `mm`.
#[allow(clippy::too_many_arguments)]
fn layer(
    w: &DgWeights,
    l: &Layer,
    lw: &LayerWeights,
    x: &mut Vec<f32>,
    pos: &[usize],
    keys: &[f32],
    vals: &[f32],
    mode: Mode,
    (kv, f16): (KvType, bool),
) -> (Vec<f32>, Vec<f32>) {
    let c = &w.config;
    let (hsz, t, nh, hd, kvh, eps) = (c.hidden, pos.len(), c.heads, l.head_dim, l.kv_heads, c.rms_eps);
    let kvd = kvh * hd;
    let h = rms(x, hsz, Some(&lw.input_norm), eps);
    let mut q = rms(&mm(&h, &lw.q, t, f16), hd, Some(&lw.q_norm), eps);
    let kraw = mm(&h, &lw.k, t, f16);
    let vraw = match &lw.v {
        Some(v) => mm(&h, v, t, f16),
        None => kraw.clone(),
    };
    let mut k = rms(&kraw, hd, Some(&lw.k_norm), eps);
    let mut v = rms(&vraw, hd, None, eps);
    rope(&mut q, pos, nh, hd, &l.rope);
    rope(&mut k, pos, kvh, hd, &l.rope);
    for x in k.iter_mut().chain(v.iter_mut()) {
        *x = kv.round(*x);
    }
    // Attention over the earlier keys then this call's (positions 0 .. in order).
    let all_k: Vec<f32> = keys.iter().chain(&k).copied().collect();
    let all_v: Vec<f32> = vals.iter().chain(&v).copied().collect();
    let m = mask(mode, l, c.sliding_window, pos[0]);
    let a = ops::attention(&q, &all_k, &all_v, t, all_k.len() / kvd, nh, kvh, hd, &m);
    let attn = rms(&mm(&a, &lw.o, t, f16), hsz, Some(&lw.post_attn_norm), eps);
    let r: Vec<f32> = x.iter().zip(&attn).map(|(a, b)| a + b).collect();
    // Dense MLP and MoE beside it, each with its norms, then one more over their sum.
    let d = mlp(&rms(&r, hsz, Some(&lw.pre_ffn_norm), eps), t, [&lw.gate, &lw.up, &lw.down], f16);
    let d = rms(&d, hsz, Some(&lw.post_ffn_norm_1), eps);
    let m = rms(&moe(w, lw, &r, t, f16), hsz, Some(&lw.post_ffn_norm_2), eps);
    let sum: Vec<f32> = d.iter().zip(&m).map(|(a, b)| a + b).collect();
    let f = rms(&sum, hsz, Some(&lw.post_ffn_norm), eps);
    let scalar = match mode {
        Mode::Encoder => lw.scalar_encoder,
        Mode::Decoder { .. } => lw.scalar_decoder,
    };
    *x = r.iter().zip(&f).map(|(a, b)| (a + b) * scalar).collect();
    (k, v)
}

/// The routed experts of `t` rows of the residual `r` (§4.4): the router reads the weightless
/// norm of `r` times `router.scale / √H`; softmax, top-k, renormalised, times each expert's
/// scale; each expert's packed gate/up rows give `gelu_tanh(gate) · up` for its down projection.
/// (`f16`: every matmul's inputs rounded, as `mm`.)
fn moe(w: &DgWeights, lw: &LayerWeights, r: &[f32], t: usize, f16: bool) -> Vec<f32> {
    let c = &w.config;
    let (hsz, eps) = (c.hidden, c.rms_eps);
    let inv = 1.0 / (hsz as f32).sqrt();
    let scale: Vec<f32> = lw.router_scale.iter().map(|s| s * inv).collect();
    let z = mm(&rms(r, hsz, Some(&scale), eps), &lw.router, t, f16);
    let route = ops::moe_route_scaled(&z, c.experts, c.top_k, true, Routing::SOFTMAX, None, Some(&lw.expert_scale));
    let xin = rms(r, hsz, Some(&lw.pre_ffn_norm_2), eps);
    let experts = |x: &[f32], by_pair: bool, e: &HostTensor| match f16 {
        true => ops::moe_matmul_f16_inputs(x, by_pair, e, c.experts, &route),
        false => ops::moe_matmul(x, by_pair, e, c.experts, &route),
    };
    let (g, u) = (experts(&xin, false, &lw.gate_exps), experts(&xin, false, &lw.up_exps));
    let y = experts(&ops::glu(&g, &u, ops::Activation::GeluTanh), true, &lw.down_exps);
    let mut out = vec![0f32; t * hsz];
    ops::moe_combine(&mut out, &y, &route);
    out
}

/// `sqrt(H)` as the reference rounds it: to the embedding's dtype (bf16 for the released
/// checkpoint; a GGUF's quantized embedding was converted from bf16 too).
pub(crate) fn embed_scale(hidden: usize, embed: DType) -> f32 {
    let s = (hidden as f32).sqrt();
    match embed {
        DType::F16 => half::f16::from_f32(s).to_f32(),
        DType::F32 => s,
        _ => half::bf16::from_f32(s).to_f32(),
    }
}

/// Encoder mode: runs `tokens` at positions `cache.len ..` causally and appends their K/V.
pub fn encode(w: &DgWeights, cache: &mut Cache, tokens: &[u32]) {
    let c = &w.config;
    if cache.k.len() != c.layers.len() {
        *cache = Cache { len: 0, k: vec![vec![]; c.layers.len()], v: vec![vec![]; c.layers.len()], kv: cache.kv, f16_inputs: cache.f16_inputs };
    }
    let s = embed_scale(w.config.hidden, w.embed.dtype);
    let mut x: Vec<f32> = ops::embed(&w.embed, tokens).iter().map(|v| v * s).collect();
    let pos: Vec<usize> = (cache.len..cache.len + tokens.len()).collect();
    for (i, (l, lw)) in c.layers.iter().zip(&w.layers).enumerate() {
        let (k, v) = layer(w, l, lw, &mut x, &pos, &cache.k[i], &cache.v[i], Mode::Encoder, (cache.kv, cache.f16_inputs));
        cache.k[i].extend(k);
        cache.v[i].extend(v);
    }
    cache.len += tokens.len();
}

/// Decoder mode: logits `[canvas.len(), V]` of a canvas at positions `cache.len ..`, with
/// self-conditioning from `sc_logits` (`[canvas.len(), V]`, already temperature-scaled) when given.
pub fn decode(w: &DgWeights, cache: &Cache, canvas: &[u32], sc_logits: Option<&[f32]>) -> Vec<f32> {
    let c = &w.config;
    let (hsz, n, eps) = (c.hidden, canvas.len(), c.rms_eps);
    let s = embed_scale(w.config.hidden, w.embed.dtype);
    let e: Vec<f32> = ops::embed(&w.embed, canvas).iter().map(|v| v * s).collect();
    let sig = match sc_logits {
        None => vec![0.0; n * hsz],
        Some(sc) => {
            // softmax(sc) · E · √H, then the self-conditioning MLP of its pre-normed value.
            let mut probs = sc.to_vec();
            ops::softmax_rows(&mut probs, c.vocab);
            let soft = ops::soft_embed(&probs, &w.embed, s);
            mlp(&rms(&soft, hsz, Some(&w.sc_norm), eps), n, [&w.sc_gate, &w.sc_up, &w.sc_down], cache.f16_inputs)
        }
    };
    let sum: Vec<f32> = e.iter().zip(&sig).map(|(a, b)| a + b).collect();
    let mut x = rms(&sum, hsz, None, eps);
    let pos: Vec<usize> = (cache.len..cache.len + n).collect();
    for (i, (l, lw)) in c.layers.iter().zip(&w.layers).enumerate() {
        let (k, v) = (cache.k.get(i).map_or(&[][..], |v| v), cache.v.get(i).map_or(&[][..], |v| v));
        layer(w, l, lw, &mut x, &pos, k, v, Mode::Decoder { cached: cache.len }, (cache.kv, cache.f16_inputs));
    }
    let x = rms(&x, hsz, Some(&w.final_norm), eps);
    let mut logits = mm(&x, &w.embed, n, cache.f16_inputs);
    if let Some(cap) = c.softcap {
        ops::softcap(&mut logits, cap);
    }
    logits
}

/// The CPU forward pass as the sampler's model: the weights and one generation's cache.
pub struct CpuDg<'a> {
    pub weights: &'a DgWeights,
    pub cache: Cache,
    /// The last decode's logits (what the next step self-conditions on).
    last: Option<Vec<f32>>,
}

impl<'a> CpuDg<'a> {
    pub fn new(weights: &'a DgWeights) -> Self {
        CpuDg { weights, cache: Cache::default(), last: None }
    }
}

impl super::sampler::DgModel for CpuDg<'_> {
    async fn encode(&mut self, tokens: &[u32]) -> crate::Result<()> {
        let c = &self.weights.config;
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(crate::Error::Input(format!("token id {bad} is outside the vocabulary (0..{})", c.vocab)));
        }
        if self.cache.len + tokens.len() + c.canvas_length > c.max_positions {
            return Err(crate::Error::Input(format!(
                "{} positions would pass the model's context of {}",
                self.cache.len + tokens.len() + c.canvas_length,
                c.max_positions
            )));
        }
        encode(self.weights, &mut self.cache, tokens);
        Ok(())
    }
    async fn decode(&mut self, canvas: &[u32], sc: Option<f32>) -> crate::Result<Vec<f32>> {
        let scaled = match (sc, &self.last) {
            (Some(t), Some(last)) => Some(last.iter().map(|x| x / t).collect::<Vec<f32>>()),
            (Some(_), None) => return Err(crate::Error::Input("self-conditioning asked for before any decode".into())),
            (None, _) => None,
        };
        let logits = decode(self.weights, &self.cache, canvas, scaled.as_deref());
        self.last = Some(logits.clone());
        Ok(logits)
    }
    fn vocab(&self) -> usize {
        self.weights.config.vocab
    }
    fn canvas_length(&self) -> usize {
        self.weights.config.canvas_length
    }
    fn max_positions(&self) -> usize {
        self.weights.config.max_positions
    }
}
