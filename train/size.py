#!/usr/bin/env python3
"""Parameter count and file sizes of a demo-model shape (no torch needed).

    python3 train/size.py                       # the configs of model.py, and the v2 candidates
    python3 train/size.py --d 512 --layers 8 --heads 8 --kv 4 --mlp 1408

Q4_0 as `unmask convert --quant q4_0` writes it: every 2-D layer matrix in Q4_0 (18 bytes per
32 weights), the embedding and the LM head in Q8_0 (34 bytes per 32), norms in F32, plus the
GGUF header with the embedded tokenizer (measured on the shipped demo-q4_0.gguf: 5,026,272
bytes for 6,819,072 parameters, of which 4,895,744 are tensor bytes: 130,528 bytes of metadata).
"""

import argparse
import json

GGUF_META = 130_528  # demo-q4_0.gguf's bytes beside its tensors (header, tokenizer, chat template)
MB = 1e6


def sizes(d, layers, heads, kv, mlp, vocab=4096):
    hd = d // heads
    per_layer = 2 * d * d + 2 * d * kv * hd + 3 * d * mlp  # q, o, k, v, gate/up/down
    norms = layers * 2 * d + d
    emb_head = 2 * vocab * d
    params = layers * per_layer + emb_head + norms
    q4 = layers * per_layer * 18 / 32 + emb_head * 34 / 32 + norms * 4 + GGUF_META
    return {"d_model": d, "n_layers": layers, "n_heads": heads, "n_kv_heads": kv, "mlp": mlp,
            "params": params, "params_M": round(params / 1e6, 2),
            "q4_0_gguf_MB": round(q4 / MB, 2), "f16_safetensors_MB": round(2 * params / MB, 2),
            "f16_weights_in_16MiB_files": -(-2 * params // (16 * 1024 * 1024))}


CANDIDATES = [  # (d, layers, heads, kv, mlp)
    (256, 6, 8, 4, 768),     # v1, shipped: 6.82 M
    (384, 12, 6, 3, 1024),
    (384, 16, 6, 3, 1024),
    (512, 8, 8, 4, 1408),    # the v2 proposal (model.py "v2")
    (512, 9, 8, 4, 1408),
    (512, 10, 8, 4, 1408),
    (512, 12, 8, 8, 1408),   # model.py "big"
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv", type=int, default=4)
    ap.add_argument("--mlp", type=int)
    a = ap.parse_args()
    rows = [(a.d, a.layers, a.heads, a.kv, a.mlp)] if a.d else CANDIDATES
    for r in rows:
        print(json.dumps(sizes(*r)))


if __name__ == "__main__":
    main()
