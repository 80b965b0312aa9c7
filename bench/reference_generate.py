#!/usr/bin/env python3
"""PyTorch baselines for speed comparisons with `unmask bench` on the same machine: LLaDA's
official `generate` loop (no cache, a fixed number of tokens per step, one full forward per
step), and with --loop fast a Fast-dLLM-style loop (dual cache: a full forward at each block's start
keeps every position's K/V, later steps of the block compute only its rows against them; and
parallel decoding: every masked token of the block whose confidence passes --threshold is
committed at once, at least the most confident one). Prints one JSON line per gen length.

    python3 bench/reference_generate.py --model models/demo          # a Hub-style folder
    python3 bench/reference_generate.py --synthetic ../shared/docs/llada-8b-instruct.config.json
    python3 bench/reference_generate.py --model models/demo --loop fast --threshold 0.9
    python3 bench/reference_generate.py --model models/demo --loop both   # one model load, both
    python3 bench/reference_generate.py --model models/demo --check  # cached rows == full pass

The model maths is LLaDA's: RMSNorm pre-norm, NeoX RoPE, bidirectional attention (SDPA),
SwiGLU, untied LM head. Random weights for --synthetic (speed only)."""
import argparse, json, math, time

import torch
import torch.nn.functional as F


def load_config(path):
    c = json.load(open(path))
    return dict(d=c["d_model"], layers=c["n_layers"], heads=c["n_heads"], kv=c.get("n_kv_heads", c["n_heads"]),
                mlp=c["mlp_hidden_size"], vocab=c.get("embedding_size", c["vocab_size"]), theta=c.get("rope_theta", 10000.0),
                eps=c.get("rms_norm_eps", 1e-5), mask=c.get("mask_token_id", 126336))


class Llada:
    def __init__(self, cfg, weights, device, dtype):
        self.c = cfg
        self.w = {k: v.to(device=device, dtype=dtype) for k, v in weights.items()}
        self.device, self.dtype = device, dtype
        hd = cfg["d"] // cfg["heads"]
        self.inv_freq = 1.0 / (cfg["theta"] ** (torch.arange(0, hd, 2, device=device, dtype=torch.float32) / hd))

    def rms(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.c["eps"])).to(self.dtype) * w

    def rope(self, x, pos):  # x: [L, H, hd], NeoX pairs (i, i + hd/2)
        ang = pos[:, None].float() * self.inv_freq[None, :]
        cos, sin = torch.cat([ang.cos()] * 2, -1)[:, None, :], torch.cat([ang.sin()] * 2, -1)[:, None, :]
        h = x.shape[-1] // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], -1)
        return (x.float() * cos + rot.float() * sin).to(self.dtype)

    @torch.no_grad()
    def forward(self, tokens, rows=None, kv=None):
        """Logits of rows `rows` (a range; all when None) of the canvas `tokens`. With `kv` (a
        dict), the rows' K/V (after RoPE) go into it at their positions, and the rows attend to
        every position's K/V there: a full pass fills it, a rows pass reuses the others'."""
        c, w, p = self.c, self.w, "model.transformer."
        n, hd = tokens.shape[0], c["d"] // c["heads"]
        rows = rows or range(n)
        L = len(rows)
        pos = torch.arange(rows.start, rows.stop, device=self.device)
        x = w[p + "wte.weight"][tokens[rows.start:rows.stop]]
        for i in range(c["layers"]):
            b = f"{p}blocks.{i}."
            h = self.rms(x, w[b + "attn_norm.weight"])
            q = (h @ w[b + "q_proj.weight"].T).view(L, c["heads"], hd)
            k = (h @ w[b + "k_proj.weight"].T).view(L, c["kv"], hd)
            v = (h @ w[b + "v_proj.weight"].T).view(L, c["kv"], hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if kv is not None:
                if i not in kv:
                    kv[i] = (torch.zeros(n, c["kv"], hd, device=self.device, dtype=self.dtype), torch.zeros(n, c["kv"], hd, device=self.device, dtype=self.dtype))
                kv[i][0][rows.start:rows.stop], kv[i][1][rows.start:rows.stop] = k, v
                k, v = kv[i]
            rep = c["heads"] // c["kv"]
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            a = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=False)
            x = x + a.transpose(0, 1).reshape(L, c["d"]) @ w[b + "attn_out.weight"].T
            h = self.rms(x, w[b + "ff_norm.weight"])
            x = x + (F.silu(h @ w[b + "ff_proj.weight"].T) * (h @ w[b + "up_proj.weight"].T)) @ w[b + "ff_out.weight"].T
        return self.rms(x, w[p + "ln_f.weight"]) @ w[p + "ff_out.weight"].T


def random_weights(c):
    g = torch.Generator().manual_seed(0)
    d, kvd, p = c["d"], c["kv"] * (c["d"] // c["heads"]), "model.transformer."
    def m(r, k):
        return torch.randn(r, k, generator=g, dtype=torch.float32).mul_(1.0 / math.sqrt(k)).to(torch.bfloat16)
    w = {p + "wte.weight": m(c["vocab"], d), p + "ff_out.weight": m(c["vocab"], d), p + "ln_f.weight": torch.ones(d)}
    for i in range(c["layers"]):
        b = f"{p}blocks.{i}."
        w.update({b + "q_proj.weight": m(d, d), b + "k_proj.weight": m(kvd, d), b + "v_proj.weight": m(kvd, d), b + "attn_out.weight": m(d, d),
                  b + "ff_proj.weight": m(c["mlp"], d), b + "up_proj.weight": m(c["mlp"], d), b + "ff_out.weight": m(d, c["mlp"]),
                  b + "attn_norm.weight": torch.ones(d), b + "ff_norm.weight": torch.ones(d)})
    return w


def generate(model, prompt, gen_length, steps, block_length, mask_id):
    """The official loop: low-confidence remasking, temperature 0, no cache."""
    x = torch.cat([prompt, torch.full((gen_length,), mask_id, device=prompt.device)])
    blocks = gen_length // block_length
    spb = steps // blocks
    passes = 0
    for b in range(blocks):
        s0, s1 = len(prompt) + b * block_length, len(prompt) + (b + 1) * block_length
        m = int((x[s0:s1] == mask_id).sum())
        quota = [m // spb + (1 if i < m % spb else 0) for i in range(spb)]
        for k in quota:
            logits = model.forward(x).float()
            passes += 1
            x0 = logits.argmax(-1)
            conf = torch.softmax(logits, -1).gather(-1, x0[:, None])[:, 0]
            masked = x == mask_id
            conf = torch.where(masked, conf, torch.full_like(conf, -math.inf))
            conf[:s0] = -math.inf
            conf[s1:] = -math.inf
            if k > 0:
                idx = conf.topk(k).indices
                x[idx] = x0[idx]
    return x, passes


def generate_fast(model, prompt, gen_length, block_length, mask_id, threshold):
    """Fast-dLLM's loop (dual cache + parallel decoding), temperature 0: per block, one full
    forward that refreshes every position's K/V, then forwards of the block's rows alone until
    the block has no mask; each step commits the block's masked tokens whose confidence
    (softmax probability of the argmax) exceeds `threshold`, at least the most confident one."""
    x = torch.cat([prompt, torch.full((gen_length,), mask_id, device=prompt.device)])
    passes = 0
    for b in range(gen_length // block_length):
        s0, s1 = len(prompt) + b * block_length, len(prompt) + (b + 1) * block_length
        kv = {}
        logits = model.forward(x, kv=kv)[s0:s1].float()
        while True:
            passes += 1
            x0 = logits.argmax(-1)
            conf = torch.softmax(logits, -1).gather(-1, x0[:, None])[:, 0]
            masked = x[s0:s1] == mask_id
            conf = torch.where(masked, conf, torch.full_like(conf, -math.inf))
            take = (conf > threshold) & masked
            take[conf.argmax()] = True
            x[s0:s1] = torch.where(take, x0, x[s0:s1])
            if not bool((x[s0:s1] == mask_id).any()):
                break
            logits = model.forward(x, rows=range(s0, s1), kv=kv).float()
    return x, passes


def check(model, prompt, gen_length, mask_id):
    """The cached rows pass against K/V of a full pass of the same canvas is the full pass."""
    x = torch.cat([prompt, torch.full((gen_length,), mask_id, device=prompt.device)])
    kv = {}
    full = model.forward(x, kv=kv).float()
    s0, s1 = len(prompt), len(prompt) + min(gen_length, 32)
    part = model.forward(x, rows=range(s0, s1), kv=kv).float()
    err = float((part - full[s0:s1]).abs().max() / full.abs().max())
    print(json.dumps({"check": "rows pass vs full pass", "rows": [s0, s1], "max_rel_error": err}), flush=True)
    tol = 1e-5 if model.dtype == torch.float32 else 2e-2
    if err > tol:
        raise SystemExit(f"the cached rows pass differs from the full pass by {err:.2e} (> {tol:.0e})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="Hub-style folder (config.json + model.safetensors)")
    ap.add_argument("--synthetic", help="config.json of a shape to fill with random weights")
    ap.add_argument("--prompt-length", type=int, default=32)
    ap.add_argument("--gen-length", type=int, nargs="+", default=[64])
    ap.add_argument("--steps", type=int, default=0, help="0: one per answer token")
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--loop", choices=["official", "fast", "both"], default="official",
                    help="official: LLaDA's generate (no cache, --steps); fast: Fast-dLLM-style (dual cache, --threshold)")
    ap.add_argument("--threshold", type=float, default=0.9, help="the fast loop commits every token this confident")
    ap.add_argument("--check", action="store_true", help="check the cached rows pass against the full pass, then exit")
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    if a.model:
        from safetensors.torch import load_file
        cfg = load_config(f"{a.model}/config.json")
        weights, name = load_file(f"{a.model}/model.safetensors"), a.model
    else:
        cfg = load_config(a.synthetic)
        weights, name = random_weights(cfg), "synthetic:" + a.synthetic
    model = Llada(cfg, weights, a.device, dtype)
    prompt = torch.tensor([(i * 7919 + 13) % cfg["vocab"] for i in range(a.prompt_length)], device=a.device)
    prompt = prompt[prompt != cfg["mask"]]
    if a.check:
        check(model, prompt, a.gen_length[0], cfg["mask"])
        return
    for fast, gen in [(f, g) for f in {"official": [False], "fast": [True], "both": [False, True]}[a.loop] for g in a.gen_length]:
        steps, block = a.steps or gen, min(a.block_length, gen)
        for _ in range(a.runs):
            if a.device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            if fast:
                out, passes = generate_fast(model, prompt.clone(), gen, block, cfg["mask"], a.threshold)
            else:
                out, passes = generate(model, prompt.clone(), gen, steps, block, cfg["mask"])
            if a.device == "cuda":
                torch.cuda.synchronize()
            ms = (time.perf_counter() - t) * 1000
        line = {"engine": "pytorch-fast-dllm" if fast else "pytorch-reference", "model": name, "device": a.device, "dtype": a.dtype,
                "prompt_length": len(prompt), "gen_length": gen, "steps": passes, "block_length": block, "cache": "dual" if fast else "none",
                "threshold": a.threshold if fast else None, "tokens_per_second": gen / (ms / 1000), "ms_per_forward": ms / passes, "total_ms": ms,
                "masks_left": int((out == cfg["mask"]).sum())}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
