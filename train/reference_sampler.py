#!/usr/bin/env python3
"""LLaDA's reference sampler (llada.md section 4) in plain PyTorch, and a held-out eval.

generate(): canvas = prompt ++ [MASK] * gen_length; blocks filled left to right; in a block
with m masked tokens, step s commits m // steps_per_block tokens plus one for each of the
first m % steps_per_block steps; each step runs one full forward; x0 = argmax (temperature 0)
or Gumbel-argmax in the log form; confidence low_confidence = softmax(logits)[x0] or random;
positions outside the current block and committed ones get -inf; the top-k are committed.
CFG is supported (cfg_scale > 0: prompt replaced by MASK for the unconditional pass).

Eval: python reference_sampler.py --model models/demo [--steps 64 --gen-length 64 --block-length 32]
  arithmetic: the number after "The answer is" must equal the expected answer;
  reversal_*, infill: the response must contain the expected string.
"""

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import Config, LLaDA  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def num_transfer_tokens(mask_index, steps):
    """mask_index [B, Lb] -> [B, steps] tokens to commit per step."""
    m = mask_index.sum(dim=1, keepdim=True)
    base = m // steps
    rem = m % steps
    out = base.expand(-1, steps).clone()
    for i in range(out.shape[0]):
        out[i, :rem[i]] += 1
    return out


@torch.no_grad()
def generate(model, prompt, steps=64, gen_length=64, block_length=32, temperature=0.0,
             cfg_scale=0.0, remasking="low_confidence", mask_id=2, gen=None):
    """prompt [B, P] (all rows the same length) -> [B, P + gen_length]."""
    B, P = prompt.shape
    x = torch.full((B, P + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[:, :P] = prompt
    prompt_index = x != mask_id
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    spb = steps // num_blocks
    for nb in range(num_blocks):
        lo, hi = P + nb * block_length, P + (nb + 1) * block_length
        block_mask = x[:, lo:hi] == mask_id
        ntt = num_transfer_tokens(block_mask, spb)
        for i in range(spb):
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                logits = model(torch.cat([x, un_x])).float()
                c, u = logits.chunk(2)
                logits = u + (cfg_scale + 1) * (c - u)
            else:
                logits = model(x).float()
            if temperature > 0:
                u01 = torch.rand(logits.shape, generator=gen, device=logits.device).clamp_(1e-20, 1.0)
                x0 = torch.argmax(logits / temperature - torch.log(-torch.log(u01)), dim=-1)
            else:
                x0 = torch.argmax(logits, dim=-1)
            if remasking == "low_confidence":
                p = F.softmax(logits, dim=-1)
                conf = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            elif remasking == "random":
                conf = torch.rand(x0.shape, generator=gen, device=x0.device)
            else:
                raise ValueError(remasking)
            conf[:, hi:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            conf = torch.where(mask_index, conf, torch.full_like(conf, -float("inf")))
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(B):
                k = int(ntt[j, i])
                if k > 0:
                    _, sel = torch.topk(conf[j], k=k)
                    transfer[j, sel] = True
            x[transfer] = x0[transfer]
    return x


def load_model(path):
    from safetensors.torch import load_file
    cfg = json.load(open(os.path.join(path, "config.json")))
    c = Config(d_model=cfg["d_model"], n_layers=cfg["n_layers"], n_heads=cfg["n_heads"],
               n_kv_heads=cfg["n_kv_heads"], mlp_hidden_size=cfg["mlp_hidden_size"],
               vocab_size=cfg["vocab_size"], rope_theta=cfg["rope_theta"],
               rms_norm_eps=cfg["rms_norm_eps"], max_sequence_length=cfg["max_sequence_length"])
    m = LLaDA(c)
    sd = load_file(os.path.join(path, "model.safetensors"))
    m.load_state_dict({k[len("model."):]: v.float() for k, v in sd.items()})
    m.eval()
    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    return m, tok, cfg


def chat_prompt(tok, message):
    s = ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n" + message +
         "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    return tok.encode(s, add_special_tokens=False).ids


@torch.no_grad()
def fill(model, text, tok, mask_id):
    """An infill item: text with <mask:N> spans (no chat template), filled one token per step,
    the most confident masked position first (the engine's infill with steps = masks, one block).
    Returns the text written into the spans."""
    ids = []
    for i, piece in enumerate(re.split(r"<mask:(\d+)>", text)):
        ids += [mask_id] * int(piece) if i % 2 else tok.encode(piece, add_special_tokens=False).ids
    x = torch.tensor([ids])
    spans = (x[0] == mask_id).nonzero().flatten().tolist()
    for _ in spans:
        p = torch.softmax(model(x)[0].float(), dim=-1)
        conf, tokens = p.max(dim=-1)
        conf[x[0] != mask_id] = -1.0
        at = int(conf.argmax())
        x[0, at] = tokens[at]
    return tok.decode([int(x[0, i]) for i in spans], skip_special_tokens=False)


def decode_answer(tok, ids, cfg):
    stop = {cfg["eot_token_id"], cfg["eos_token_id"]}
    out = []
    for t in ids:
        if t in stop:
            break
        out.append(t)
    return tok.decode(out)


def correct(task, response, answer):
    if task.startswith("arithmetic") or (task == "freeform" and re.fullmatch(r"-?\d+", answer)):
        # arithmetic, arithmetic_forms, and freeform items with a number as the answer
        m = re.findall(r"The answer is (-?\d+)", response)
        return bool(m) and m[-1] == answer
    if task == "freeform":
        # a word as the answer: the word after the last "The answer is", else (a bare answer such
        # as a reversal name) the first sentence holds it as a whole word
        m = re.findall(r"The answer is ([\w'-]+)", response)
        if m:
            return m[-1].lower() == answer.lower()
    if task.startswith("infill"):
        return response.strip().rstrip(".").strip() == answer
    # reversal (as src/eval.rs scores it): a cloze's filled text, else the response's first
    # sentence, holds the answer as a whole word
    first = response if "cloze" in task else response.strip().split(".")[0]
    return re.search(r"(?<![^\W_])" + re.escape(answer) + r"(?![^\W_])", first) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "..", "models", "demo"))
    ap.add_argument("--eval-dir", default=None)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--gen-length", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--cfg-scale", type=float, default=0.0)
    ap.add_argument("--remasking", default="low_confidence")
    ap.add_argument("--limit", type=int, default=0, help="items per task (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--show", type=int, default=2, help="print this many responses per task")
    ap.add_argument("--prompt", default=None, help="generate for one user message and exit")
    ap.add_argument("--json", default=None, help="write results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok, cfg = load_model(args.model)
    mask_id = cfg["mask_token_id"]
    kw = dict(steps=args.steps, gen_length=args.gen_length, block_length=args.block_length,
              temperature=args.temperature, cfg_scale=args.cfg_scale, remasking=args.remasking,
              mask_id=mask_id, gen=torch.Generator().manual_seed(0))
    if args.prompt is not None:
        p = torch.tensor([chat_prompt(tok, args.prompt)])
        out = generate(model, p, **kw)
        print(decode_answer(tok, out[0, p.shape[1]:].tolist(), cfg))
        return
    eval_dir = args.eval_dir or os.path.join(args.model, "eval")
    results = {}
    t0 = time.time()
    for name in sorted(os.listdir(eval_dir)):
        if not name.endswith(".jsonl"):
            continue
        items = [json.loads(l) for l in open(os.path.join(eval_dir, name))]
        if args.limit:
            items = items[:args.limit]
        groups = defaultdict(list)  # equal prompt lengths batch exactly (no padding)
        ok = 0
        task = items[0]["task"]
        if items[0].get("infill"):
            for n, it in enumerate(items):
                resp = fill(model, it["prompt"], tok, mask_id)
                good = correct(it["task"], resp, it["answer"])
                ok += good
                if n < args.show:
                    print(f"  [{task}] {it['prompt']!r} -> {resp!r} ({'ok' if good else 'want ' + it['answer']})")
            results[task] = {"n": len(items), "correct": ok, "accuracy": ok / len(items)}
            print(f"{task:24s} {ok:4d}/{len(items):4d} = {100 * ok / len(items):5.1f}%", flush=True)
            continue
        for it in items:
            ids = chat_prompt(tok, it["prompt"])
            groups[len(ids)].append((it, ids))
        shown = 0
        for _, grp in sorted(groups.items()):
            for i in range(0, len(grp), args.batch):
                chunk = grp[i:i + args.batch]
                p = torch.tensor([ids for _, ids in chunk])
                out = generate(model, p, **kw)
                for (it, _), row in zip(chunk, out):
                    resp = decode_answer(tok, row[p.shape[1]:].tolist(), cfg)
                    good = correct(it["task"], resp, it["answer"])
                    ok += good
                    if shown < args.show:
                        print(f"  [{task}] {it['prompt']!r} -> {resp!r} ({'ok' if good else 'want ' + it['answer']})")
                        shown += 1
        results[task] = {"n": len(items), "correct": ok, "accuracy": ok / len(items)}
        print(f"{task:24s} {ok:4d}/{len(items):4d} = {100 * ok / len(items):5.1f}%", flush=True)
    summary = {"settings": {k: v for k, v in kw.items() if k != "gen"}, "results": results,
               "seconds": round(time.time() - t0)}
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
