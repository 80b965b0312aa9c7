#!/usr/bin/env python3
"""Export a training checkpoint to a Hub-style LLaDA directory (default models/demo/):
config.json, model.safetensors (F32, HF LLaDA tensor names, [out, in] layout),
tokenizer.json, tokenizer_config.json, eval/*.jsonl. No GGUF here: the Rust side converts.
"""

import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, LLaDA  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

CHAT_TEMPLATE = ("<|startoftext|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
                 "<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
                 "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def expected_shapes(c):
    D, V, H, hd = c["d_model"], c["vocab_size"], c["mlp_hidden_size"], c["d_model"] // c["n_heads"]
    kv = c["n_kv_heads"] * hd
    s = {"model.transformer.wte.weight": [V, D], "model.transformer.ln_f.weight": [D],
         "model.transformer.ff_out.weight": [V, D]}
    for n in range(c["n_layers"]):
        p = f"model.transformer.blocks.{n}."
        s.update({p + "q_proj.weight": [D, D], p + "k_proj.weight": [kv, D], p + "v_proj.weight": [kv, D],
                  p + "attn_out.weight": [D, D], p + "ff_proj.weight": [H, D], p + "up_proj.weight": [H, D],
                  p + "ff_out.weight": [D, H], p + "attn_norm.weight": [D], p + "ff_norm.weight": [D]})
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "work", "ckpt.pt"))
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "work", "tokenizer.json"))
    ap.add_argument("--eval", default=os.path.join(HERE, "work", "data", "eval"))
    ap.add_argument("--licenses", default=os.path.join(HERE, "work", "data", "LICENSES.txt"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "models", "demo"))
    ap.add_argument("--dtype", default="f16", choices=["f32", "f16"])
    args = ap.parse_args()

    ck = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    for name in ck.get("shards", []):  # train.py --weights-out over 15 MiB: the rest of the tensors
        ck["model"].update(torch.load(os.path.join(os.path.dirname(args.ckpt), name), map_location="cpu",
                                      weights_only=False)["model"])
    cfgd = ck["config"]
    tok = Tokenizer.from_file(args.tokenizer)
    ids = {s: tok.token_to_id(s) for s in ["<|mdm_mask|>", "<|endoftext|>", "<|startoftext|>", "<|eot_id|>",
                                           "<|start_header_id|>", "<|end_header_id|>"]}
    config = {
        "model_type": "llada",
        "architectures": ["LLaDAModelLM"],
        "d_model": cfgd["d_model"],
        "n_layers": cfgd["n_layers"],
        "n_heads": cfgd["n_heads"],
        "n_kv_heads": cfgd["n_kv_heads"],
        "mlp_hidden_size": cfgd["mlp_hidden_size"],
        "vocab_size": cfgd["vocab_size"],
        "embedding_size": cfgd["vocab_size"],
        "rope_theta": cfgd["rope_theta"],
        "rms_norm_eps": cfgd["rms_norm_eps"],
        "max_sequence_length": cfgd["max_sequence_length"],
        "mask_token_id": ids["<|mdm_mask|>"],
        "eos_token_id": ids["<|endoftext|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": ids["<|startoftext|>"],
        "eot_token_id": ids["<|eot_id|>"],
        "start_header_token_id": ids["<|start_header_id|>"],
        "end_header_token_id": ids["<|end_header_id|>"],
        "include_bias": False,
        "weight_tying": False,
        "rope": "neox",
        "activation_type": "silu",
        "block_type": "llama",
        "training": {"steps": ck["step"], "seconds": round(ck.get("elapsed", 0.0)),
                     "seed": ck.get("args", {}).get("seed")},
    }
    dtype = torch.float32 if args.dtype == "f32" else torch.float16
    sd = {"model." + k: v.detach().to(dtype).contiguous() for k, v in ck["model"].items()}
    want = expected_shapes(config)
    assert set(sd) == set(want), (set(sd) ^ set(want))
    for k, s in want.items():
        assert list(sd[k].shape) == s, (k, list(sd[k].shape), s)

    os.makedirs(args.out, exist_ok=True)
    save_file(sd, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    os.chmod(os.path.join(args.out, "model.safetensors"), 0o644)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copy(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "add_eos_token": False, "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "mask_token": "<|mdm_mask|>", "chat_template": CHAT_TEMPLATE,
                   "model_max_length": config["max_sequence_length"],
                   "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
        f.write("\n")
    ev_out = os.path.join(args.out, "eval")
    os.makedirs(ev_out, exist_ok=True)
    for name in sorted(os.listdir(args.eval)):
        if name.endswith(".jsonl"):
            shutil.copy(os.path.join(args.eval, name), os.path.join(ev_out, name))
    if os.path.exists(args.licenses):
        shutil.copy(args.licenses, os.path.join(args.out, "DATA_LICENSES.txt"))

    # the exported files must reproduce the checkpoint's logits
    from safetensors.torch import load_file
    m = LLaDA(Config(**cfgd))
    m.load_state_dict({k[len("model."):]: v.float() for k, v in load_file(os.path.join(args.out, "model.safetensors")).items()})
    ref = LLaDA(Config(**cfgd))
    ref.load_state_dict(ck["model"])
    x = torch.randint(0, cfgd["vocab_size"], (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        err = (m(x) - ref(x)).abs().max().item()
    assert err < (1e-4 if args.dtype == "f32" else 5e-2), err
    print(json.dumps({"out": os.path.abspath(args.out), "tensors": len(sd),
                      "params": sum(v.numel() for v in sd.values()), "max_logit_diff": err}))


if __name__ == "__main__":
    main()
