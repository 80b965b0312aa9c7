"""LLaDA architecture in plain PyTorch, written to match the Rust engine's forward pass.

Per layer (pre-norm, no biases anywhere):
    h  = RMSNorm(x) * attn_norm                      (f32, eps from config)
    q, k, v = h Wq^T, h Wk^T, h Wv^T
    q, k <- NeoX RoPE (rotate_half, pairs (i, i + d/2), inv_freq = 1/theta^(2i/d))
    a  = softmax(q k^T / sqrt(head_dim)) v            (bidirectional, GQA)
    x += a Wo^T
    h  = RMSNorm(x) * ff_norm
    x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
logits = RMSNorm(x) * ln_f  @ lm_head^T               (untied head)

Parameter names follow the HF LLaDA checkpoint (model.transformer.*) so that export is a
plain state_dict rename-free dump.
"""

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    n_kv_heads: int = 8
    mlp_hidden_size: int = 768
    vocab_size: int = 4096
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_sequence_length: int = 128

    @property
    def head_dim(self):
        return self.d_model // self.n_heads

    def to_dict(self):
        return asdict(self)


CONFIGS = {
    # the shipped CPU model (~60 min on 2 cores)
    "small": Config(n_kv_heads=4),
    # a few-step pipeline check
    "tiny": Config(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, mlp_hidden_size=128),
    # for a CUDA GPU (not used for the shipped model)
    # PROPOSAL for demo model v2 (issue 22), NOT TRAINED YET: the widest/deepest shape whose Q4_0
    # GGUF (layers Q4_0, embedding and head Q8_0) stays well inside 20 MB: 27,795,968 parameters,
    # 17.9 MB as Q4_0 (train/size.py). For train/gpu.sh (CONFIG=v2).
    "v2": Config(d_model=512, n_layers=8, n_heads=8, n_kv_heads=4, mlp_hidden_size=1408),
    "big": Config(d_model=512, n_layers=12, n_heads=8, n_kv_heads=8, mlp_hidden_size=1408,
                  max_sequence_length=192),
}


def rms_norm(x, weight, eps):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (xf * weight.float()).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


def rope_tables(seq_len, head_dim, theta, device):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    pos = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)  # [L, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [L, d]
    return emb.cos(), emb.sin()


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat([-x[..., d:], x[..., :d]], dim=-1)


def apply_rope(x, cos, sin):
    # x: [B, H, L, d]; cos/sin: [L, d]
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        D, hd = c.d_model, c.head_dim
        self.c = c
        self.attn_norm = RMSNorm(D, c.rms_norm_eps)
        self.q_proj = nn.Linear(D, c.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(D, c.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(D, c.n_kv_heads * hd, bias=False)
        self.attn_out = nn.Linear(c.n_heads * hd, D, bias=False)
        self.ff_norm = RMSNorm(D, c.rms_norm_eps)
        self.ff_proj = nn.Linear(D, c.mlp_hidden_size, bias=False)  # gate
        self.up_proj = nn.Linear(D, c.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(c.mlp_hidden_size, D, bias=False)  # down

    def forward(self, x, cos, sin):
        c = self.c
        B, L, D = x.shape
        hd = c.head_dim
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, L, c.n_heads, hd).transpose(1, 2)
        k = self.k_proj(h).view(B, L, c.n_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(h).view(B, L, c.n_kv_heads, hd).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if c.n_kv_heads != c.n_heads:
            rep = c.n_heads // c.n_kv_heads
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=False, scale=1.0 / math.sqrt(hd))
        a = a.transpose(1, 2).reshape(B, L, c.n_heads * hd)
        x = x + self.attn_out(a)
        h = self.ff_norm(x)
        x = x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))
        return x


class Transformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.n_layers)])
        self.ln_f = RMSNorm(c.d_model, c.rms_norm_eps)
        self.ff_out = nn.Linear(c.d_model, c.vocab_size, bias=False)  # LM head, untied


class LLaDA(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        assert c.d_model % c.n_heads == 0 and c.n_heads % c.n_kv_heads == 0
        self.config = c
        self.transformer = Transformer(c)
        self._rope = {}
        self.reset_parameters()

    def reset_parameters(self):
        c = self.config
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith("attn_out.weight") or name.endswith("blocks.0.ff_out.weight") or (
                    ".blocks." in name and name.endswith("ff_out.weight")):
                nn.init.normal_(p, std=std / math.sqrt(2 * c.n_layers))
            else:
                nn.init.normal_(p, std=std)

    def rope(self, L, device):
        key = (L, str(device))
        if key not in self._rope:
            c = self.config
            self._rope[key] = rope_tables(L, c.head_dim, c.rope_theta, device)
        return self._rope[key]

    def forward(self, ids, select=None):
        """ids [B, L] -> logits [B, L, V]; with a bool mask `select` [B, L], logits of the
        selected positions only, [n, V] (saves the LM head on unmasked positions)."""
        t = self.transformer
        x = t.wte(ids)
        cos, sin = self.rope(ids.shape[1], ids.device)
        for b in t.blocks:
            x = b(x, cos, sin)
        if select is not None:
            x = x[select]
        x = t.ln_f(x)
        return t.ff_out(x)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())
