//! The family tables (see `arch.rs` for what each field means): LLaDA, Dream, LLaDA-MoE, RND1
//! and LLaDA 2, each with its tensors' HF and llama.cpp names and shape rules and its facts (RoPE
//! pairing per layout, shifted logits, top-k normalisation, mask id, chat format). The sampler
//! each family's reference code runs is `sampler::FamilySampler::of`.

use super::arch::{ChatFormat, Dim, Family, Place, QuantPolicy, Role, RopeStyle, TensorSpec};

macro_rules! spec {
    ($role:ident, $place:ident, $what:literal, $hf:literal, $gguf:literal, [$r:ident, $c:ident], $q:ident) => {
        TensorSpec {
            role: Role::$role,
            place: Place::$place,
            what: $what,
            hf: $hf,
            gguf: $gguf,
            shape: [Dim::$r, Dim::$c],
            optional: false,
            quant: QuantPolicy::$q,
            experts: false,
            fused: None,
        }
    };
}

/// LLaDA-8B (OLMo-derived code, LLaMA-like maths): the names of the HF release and of
/// llama.cpp's `llada` converter.
pub static LLADA: Family = Family {
    name: "llada",
    gguf_arch: "llada",
    hf_model_types: &["llada"],
    tensors: &[
        spec!(Embed, First, "embedding", "model.transformer.wte.weight", "token_embd.weight", [Vocab, Model], Wide),
        spec!(AttnNorm, Layer, "attn_norm", "model.transformer.blocks.{i}.attn_norm.weight", "blk.{i}.attn_norm.weight", [One, Model], F32),
        spec!(Q, Layer, "q_proj", "model.transformer.blocks.{i}.q_proj.weight", "blk.{i}.attn_q.weight", [Model, Model], Matrix),
        spec!(K, Layer, "k_proj", "model.transformer.blocks.{i}.k_proj.weight", "blk.{i}.attn_k.weight", [Kv, Model], Matrix),
        spec!(V, Layer, "v_proj", "model.transformer.blocks.{i}.v_proj.weight", "blk.{i}.attn_v.weight", [Kv, Model], Matrix),
        spec!(O, Layer, "attn_out", "model.transformer.blocks.{i}.attn_out.weight", "blk.{i}.attn_output.weight", [Model, Model], Matrix),
        spec!(FfnNorm, Layer, "ff_norm", "model.transformer.blocks.{i}.ff_norm.weight", "blk.{i}.ffn_norm.weight", [One, Model], F32),
        spec!(Gate, Layer, "ff_proj", "model.transformer.blocks.{i}.ff_proj.weight", "blk.{i}.ffn_gate.weight", [Hidden, Model], Matrix),
        spec!(Up, Layer, "up_proj", "model.transformer.blocks.{i}.up_proj.weight", "blk.{i}.ffn_up.weight", [Hidden, Model], Matrix),
        spec!(Down, Layer, "ff_out", "model.transformer.blocks.{i}.ff_out.weight", "blk.{i}.ffn_down.weight", [Model, Hidden], Matrix),
        spec!(FinalNorm, Last, "ln_f", "model.transformer.ln_f.weight", "output_norm.weight", [One, Model], F32),
        spec!(LmHead, Last, "LM head", "model.transformer.ff_out.weight", "output.weight", [Vocab, Model], Wide),
    ],
    hf_rope: RopeStyle::NeoX,
    gguf_rope: RopeStyle::Interleaved,
    shift_logits: false,
    norm_topk_prob: false,
    norm_topk_prob_fixed: false,
    default_mask_token: 126336,
    attention_block: 0,
    chat: ChatFormat { bos: "<|startoftext|>", header: "<|start_header_id|>{role}<|end_header_id|>\n\n", end: "<|eot_id|>", roles: ["system", "user", "assistant"] },
    chat_template: "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
};

/// Qwen2's layout, as Dream-v0 (and DiffuCoder, Dream-Coder) ship it: q/k/v biases, GQA, NeoX
/// RoPE in both layouts (llama.cpp's `dream` does not permute q/k), shifted logits.
pub static DREAM: Family = Family {
    name: "dream",
    gguf_arch: "dream",
    hf_model_types: &["Dream", "dream"],
    tensors: &[
        spec!(Embed, First, "embedding", "model.embed_tokens.weight", "token_embd.weight", [Vocab, Model], Wide),
        spec!(AttnNorm, Layer, "input_layernorm", "model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", [One, Model], F32),
        spec!(Q, Layer, "q_proj", "model.layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", [Q, Model], Matrix),
        spec!(QBias, Layer, "q_proj bias", "model.layers.{i}.self_attn.q_proj.bias", "blk.{i}.attn_q.bias", [One, Q], F32),
        spec!(K, Layer, "k_proj", "model.layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight", [Kv, Model], Matrix),
        spec!(KBias, Layer, "k_proj bias", "model.layers.{i}.self_attn.k_proj.bias", "blk.{i}.attn_k.bias", [One, Kv], F32),
        spec!(V, Layer, "v_proj", "model.layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight", [Kv, Model], Matrix),
        spec!(VBias, Layer, "v_proj bias", "model.layers.{i}.self_attn.v_proj.bias", "blk.{i}.attn_v.bias", [One, Kv], F32),
        spec!(O, Layer, "o_proj", "model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", [Model, Q], Matrix),
        spec!(FfnNorm, Layer, "post_attention_layernorm", "model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", [One, Model], F32),
        spec!(Gate, Layer, "gate_proj", "model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", [Hidden, Model], Matrix),
        spec!(Up, Layer, "up_proj", "model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", [Hidden, Model], Matrix),
        spec!(Down, Layer, "down_proj", "model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", [Model, Hidden], Matrix),
        spec!(FinalNorm, Last, "norm", "model.norm.weight", "output_norm.weight", [One, Model], F32),
        spec!(LmHead, Last, "LM head", "lm_head.weight", "output.weight", [Vocab, Model], Wide),
    ],
    hf_rope: RopeStyle::NeoX,
    gguf_rope: RopeStyle::NeoX,
    shift_logits: true,
    norm_topk_prob: false,
    norm_topk_prob_fixed: false,
    default_mask_token: 151666,
    attention_block: 0,
    chat: QWEN_CHAT,
    chat_template: QWEN_TEMPLATE,
};

/// The MoE layout shared by LLaDA-MoE and RND1 (OLMoE / Qwen3-MoE names): per-head QK-norm
/// before RoPE, a softmax router, stacked experts. A layer is dense or MoE by which tensors it
/// has (the index checks it has one complete set).
macro_rules! moe_tensors {
    () => {
        &[
            spec!(Embed, First, "embedding", "model.embed_tokens.weight", "token_embd.weight", [Vocab, Model], Wide),
            spec!(AttnNorm, Layer, "input_layernorm", "model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", [One, Model], F32),
            spec!(Q, Layer, "q_proj", "model.layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", [Q, Model], Matrix),
            spec!(K, Layer, "k_proj", "model.layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight", [Kv, Model], Matrix),
            spec!(V, Layer, "v_proj", "model.layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight", [Kv, Model], Matrix),
            spec!(QNorm, Layer, "q_norm", "model.layers.{i}.self_attn.q_norm.weight", "blk.{i}.attn_q_norm.weight", [One, Head], F32),
            spec!(KNorm, Layer, "k_norm", "model.layers.{i}.self_attn.k_norm.weight", "blk.{i}.attn_k_norm.weight", [One, Head], F32),
            spec!(O, Layer, "o_proj", "model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", [Model, Q], Matrix),
            spec!(FfnNorm, Layer, "post_attention_layernorm", "model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", [One, Model], F32),
            spec!(Router, Layer, "router", "model.layers.{i}.mlp.gate.weight", "blk.{i}.ffn_gate_inp.weight", [Experts, Model], F32).optional(),
            spec!(
                GateExps,
                Layer,
                "experts gate_proj",
                "model.layers.{i}.mlp.experts.{e}.gate_proj.weight",
                "blk.{i}.ffn_gate_exps.weight",
                [ExpertsHidden, Model],
                Matrix
            )
            .optional()
            .experts(),
            spec!(
                UpExps,
                Layer,
                "experts up_proj",
                "model.layers.{i}.mlp.experts.{e}.up_proj.weight",
                "blk.{i}.ffn_up_exps.weight",
                [ExpertsHidden, Model],
                Matrix
            )
            .optional()
            .experts(),
            spec!(
                DownExps,
                Layer,
                "experts down_proj",
                "model.layers.{i}.mlp.experts.{e}.down_proj.weight",
                "blk.{i}.ffn_down_exps.weight",
                [ExpertsModel, ExpertHidden],
                Matrix
            )
            .optional()
            .experts(),
            spec!(Gate, Layer, "gate_proj", "model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", [Hidden, Model], Matrix).optional(),
            spec!(Up, Layer, "up_proj", "model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", [Hidden, Model], Matrix).optional(),
            spec!(Down, Layer, "down_proj", "model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", [Model, Hidden], Matrix).optional(),
            spec!(FinalNorm, Last, "norm", "model.norm.weight", "output_norm.weight", [One, Model], F32),
            spec!(LmHead, Last, "LM head", "lm_head.weight", "output.weight", [Vocab, Model], Wide),
        ]
    };
}

/// LLaDA-MoE-7B-A1B (inclusionAI): 64 experts, top-8, router weights NOT renormalised (its
/// modeling code hard-codes `norm_topk_prob = False`, as llama.cpp's `llada-moe` graph does);
/// unshifted logits. Its checkpoints say `model_type: "llada"` with MoE keys.
pub static LLADA_MOE: Family = Family {
    name: "llada-moe",
    gguf_arch: "llada-moe",
    hf_model_types: &["lladamoe", "llada_moe", "llada-moe"],
    tensors: moe_tensors!(),
    hf_rope: RopeStyle::NeoX,
    gguf_rope: RopeStyle::NeoX,
    shift_logits: false,
    norm_topk_prob: false,
    norm_topk_prob_fixed: true,
    default_mask_token: 156895,
    attention_block: 0,
    chat: ROLE_CHAT,
    chat_template: ROLE_TEMPLATE,
};

/// RND1 (Radical Numerics, from Qwen3-30B-A3B): 128 experts, top-8, renormalised top-k
/// weights (`norm_topk_prob`), shifted logits like Dream.
pub static RND1: Family = Family {
    name: "rnd1",
    gguf_arch: "rnd1",
    hf_model_types: &["rnd1", "RND1"],
    tensors: moe_tensors!(),
    hf_rope: RopeStyle::NeoX,
    gguf_rope: RopeStyle::NeoX,
    shift_logits: true,
    norm_topk_prob: true,
    norm_topk_prob_fixed: false,
    default_mask_token: 151669,
    attention_block: 0,
    chat: QWEN_CHAT,
    chat_template: QWEN_TEMPLATE,
};

/// LLaDA 2.x (inclusionAI's LLaDA2.0-mini/flash, `llada2_moe`; BailingMoeV2's layout): a
/// fused query_key_value projection, per-head QK-norm, partial RoPE, block-causal attention
/// in blocks of 32, a first dense layer (`first_k_dense_replace`) then MoE layers with a
/// sigmoid router, an expert bias for choosing, group-limited top-k, scaled weights and a
/// shared expert. llama.cpp has no diffusion graph for it: the GGUF names are ours, after its
/// `bailingmoe2` (q/k/v kept apart).
pub static LLADA2: Family = Family {
    name: "llada2",
    gguf_arch: "llada2",
    hf_model_types: &["llada2_moe", "llada2"],
    tensors: &[
        spec!(Embed, First, "embedding", "model.word_embeddings.weight", "token_embd.weight", [Vocab, Model], Wide),
        spec!(AttnNorm, Layer, "input_layernorm", "model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", [One, Model], F32),
        spec!(Q, Layer, "query", "model.layers.{i}.attention.query_key_value.weight", "blk.{i}.attn_q.weight", [Q, Model], Matrix).fused(Dim::Qkv, &[]),
        spec!(K, Layer, "key", "model.layers.{i}.attention.query_key_value.weight", "blk.{i}.attn_k.weight", [Kv, Model], Matrix).fused(Dim::Qkv, &[Dim::Q]),
        spec!(V, Layer, "value", "model.layers.{i}.attention.query_key_value.weight", "blk.{i}.attn_v.weight", [Kv, Model], Matrix)
            .fused(Dim::Qkv, &[Dim::Q, Dim::Kv]),
        spec!(QNorm, Layer, "query_layernorm", "model.layers.{i}.attention.query_layernorm.weight", "blk.{i}.attn_q_norm.weight", [One, Head], F32),
        spec!(KNorm, Layer, "key_layernorm", "model.layers.{i}.attention.key_layernorm.weight", "blk.{i}.attn_k_norm.weight", [One, Head], F32),
        spec!(O, Layer, "dense", "model.layers.{i}.attention.dense.weight", "blk.{i}.attn_output.weight", [Model, Q], Matrix),
        spec!(OBias, Layer, "dense bias", "model.layers.{i}.attention.dense.bias", "blk.{i}.attn_output.bias", [One, Model], F32).optional(),
        spec!(FfnNorm, Layer, "post_attention_layernorm", "model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight", [One, Model], F32),
        spec!(Router, Layer, "gate", "model.layers.{i}.mlp.gate.weight", "blk.{i}.ffn_gate_inp.weight", [Experts, Model], F32).optional(),
        spec!(ExpertBias, Layer, "expert_bias", "model.layers.{i}.mlp.gate.expert_bias", "blk.{i}.exp_probs_b.bias", [One, Experts], F32).optional(),
        spec!(
            GateExps,
            Layer,
            "experts gate_proj",
            "model.layers.{i}.mlp.experts.{e}.gate_proj.weight",
            "blk.{i}.ffn_gate_exps.weight",
            [ExpertsHidden, Model],
            Matrix
        )
        .optional()
        .experts(),
        spec!(
            UpExps,
            Layer,
            "experts up_proj",
            "model.layers.{i}.mlp.experts.{e}.up_proj.weight",
            "blk.{i}.ffn_up_exps.weight",
            [ExpertsHidden, Model],
            Matrix
        )
        .optional()
        .experts(),
        spec!(
            DownExps,
            Layer,
            "experts down_proj",
            "model.layers.{i}.mlp.experts.{e}.down_proj.weight",
            "blk.{i}.ffn_down_exps.weight",
            [ExpertsModel, ExpertHidden],
            Matrix
        )
        .optional()
        .experts(),
        spec!(
            SharedGate,
            Layer,
            "shared gate_proj",
            "model.layers.{i}.mlp.shared_experts.gate_proj.weight",
            "blk.{i}.ffn_gate_shexp.weight",
            [SharedHidden, Model],
            Matrix
        )
        .optional(),
        spec!(
            SharedUp,
            Layer,
            "shared up_proj",
            "model.layers.{i}.mlp.shared_experts.up_proj.weight",
            "blk.{i}.ffn_up_shexp.weight",
            [SharedHidden, Model],
            Matrix
        )
        .optional(),
        spec!(
            SharedDown,
            Layer,
            "shared down_proj",
            "model.layers.{i}.mlp.shared_experts.down_proj.weight",
            "blk.{i}.ffn_down_shexp.weight",
            [Model, SharedHidden],
            Matrix
        )
        .optional(),
        spec!(Gate, Layer, "gate_proj", "model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", [Hidden, Model], Matrix).optional(),
        spec!(Up, Layer, "up_proj", "model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", [Hidden, Model], Matrix).optional(),
        spec!(Down, Layer, "down_proj", "model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", [Model, Hidden], Matrix).optional(),
        spec!(FinalNorm, Last, "norm", "model.norm.weight", "output_norm.weight", [One, Model], F32),
        spec!(LmHead, Last, "LM head", "lm_head.weight", "output.weight", [Vocab, Model], Wide),
    ],
    hf_rope: RopeStyle::NeoX,
    gguf_rope: RopeStyle::NeoX,
    shift_logits: false,
    norm_topk_prob: true,
    norm_topk_prob_fixed: false,
    default_mask_token: 156895,
    attention_block: 32,
    chat: ROLE_CHAT,
    chat_template: ROLE_TEMPLATE,
};

/// ChatML, as Qwen2/Qwen3-derived models (Dream, RND1) use it.
const QWEN_CHAT: ChatFormat = ChatFormat { bos: "", header: "<|im_start|>{role}\n", end: "<|im_end|>\n", roles: ["system", "user", "assistant"] };
const QWEN_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Ant Group's role format (LLaDA-MoE, LLaDA 2).
const ROLE_CHAT: ChatFormat = ChatFormat { bos: "", header: "<role>{role}</role>", end: "<|role_end|>", roles: ["SYSTEM", "HUMAN", "ASSISTANT"] };
const ROLE_TEMPLATE: &str = "{% for message in messages %}{{ '<role>' + message['role'] | upper + '</role>' + message['content'] + '<|role_end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<role>ASSISTANT</role>' }}{% endif %}";

/// Every family the engine runs.
pub static FAMILIES: &[&Family] = &[&LLADA, &DREAM, &LLADA_MOE, &RND1, &LLADA2];
