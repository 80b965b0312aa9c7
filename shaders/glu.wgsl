// The gated MLP's activation for the matmuls' fused epilogues, dense and experts (the host
// prepends it): act 0 = SiLU (SwiGLU: LLaDA, Qwen, Ling), 1 = GELU with the tanh approximation
// (GeGLU: Gemma's `gelu_pytorch_tanh`, 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))).

// tanh that stays finite for any input (|x| > 15 is ±1 in f32 anyway).
fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

fn glu_act(g: f32, act: u32) -> f32 {
    if (act == 1u) {
        return 0.5 * g * (1.0 + tanh_safe(0.7978845608 * (g + 0.044715 * g * g * g)));
    }
    return g / (1.0 + exp(-g));
}
