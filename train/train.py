#!/usr/bin/env python3
"""Train the demo LLaDA model with the masked-diffusion objective (llada.md section 1).

Each sequence of a batch is either
  * prose (pretraining style): a window of the token stream, every token masked-eligible, or
  * a chat item (SFT style): <|startoftext|><|start_header_id|>user<|end_header_id|>\\n\\n
    {prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n{response}<|eot_id|>
    then <|endoftext|> to the end of the canvas; only the positions after the assistant
    header (response, <|eot_id|> and the EOS padding) are eligible, the prompt stays clean.
Per sequence t ~ U(0,1], p = (1-eps) t + eps; each eligible token is replaced by
<|mdm_mask|> with probability p; loss = sum over masked of CE / p, divided by the number of
eligible positions of that sequence (the sequence length for prose, the answer length for
SFT), averaged over the batch.

Every batch has one canvas length drawn from --lengths (repeats weight a length; default
48..288, mostly <= 128), so the model sees several canvas sizes and EOS tails of various
lengths, and short items are not padded to the longest canvas. A source with no item short
enough for the batch's canvas sits that batch out.
Checkpoints every --ckpt-every steps to <work>/ckpt.pt; a rerun resumes from it.
"""

import argparse
import bisect
import gzip
import io
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import CONFIGS, LLaDA  # noqa: E402

EPS = 1e-3

# sampling weights of the sources of a batch row
MIX = {
    "prose": 0.10,        # WordNet example sentences and glosses
    "facts": 0.12,        # reversal-fact statements (pretraining style)
    "arithmetic": 0.32,   # v2: word problems from train/problems.py's training frames
    "qa": 0.08,           # v2: free-form questions ("What is 48 + 24?", "What day comes after Monday?")
    "reversal": 0.14,
    "infill": 0.12,
    "wordchat": 0.12,     # word_use, define, infill_prose chat items
    "copy": 0.08,         # "Repeat: TEXT" -> TEXT: practice at reading the prompt
    "drill": 0.0,         # "Compute: 48 + 24, 7 * 8" -> "48 + 24 = 72. 7 * 8 = 56." (phase 3)
}


def prompt_ids(tok, message):
    s = ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n" + message +
         "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    return tok.encode(s, add_special_tokens=False).ids


class Data:
    """Every source, tokenized: token streams (prose, facts) and (prompt ids, answer ids) items."""

    CACHED = ("eos", "eot", "mask", "vocab_size", "streams", "chat")

    @classmethod
    def load_cache(cls, path):
        """From a file written by `save_cache` (needs only torch: the GPU machine's setup); also
        reads the plain torch.save files of earlier versions."""
        d = cls.__new__(cls)
        raw = open(path, "rb").read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        c = torch.load(io.BytesIO(raw), weights_only=False)
        if c.get("format") == 2:  # chat items as flat int16 tokens + lengths
            chat = {}
            for k, (flat, plen, rlen) in c["chat"].items():
                flat, items, o = flat.tolist(), [], 0
                for p, r in zip(plen.tolist(), rlen.tolist()):
                    items.append((flat[o:o + p], flat[o + p:o + p + r]))
                    o += p + r
                chat[k] = items
            c["chat"] = chat
            c["streams"] = {k: v.long() for k, v in c["streams"].items()}
        for k in cls.CACHED:
            setattr(d, k, c[k])
        d.index()
        return d

    def save_cache(self, path):
        """Tokens as int16 (the vocabulary is 4096), gzip-compressed: the v2 data is ~5 MB this way
        (44 MB as pickled lists), so that it travels to a lent GPU machine with the repository
        inside the device tool's 64 MiB."""
        c = {k: getattr(self, k) for k in self.CACHED}
        c["format"] = 2
        c["streams"] = {k: v.to(torch.int16) for k, v in self.streams.items()}
        c["chat"] = {k: (torch.tensor([t for p, r in v for t in p + r], dtype=torch.int16),
                         torch.tensor([len(p) for p, r in v], dtype=torch.int32),
                         torch.tensor([len(r) for p, r in v], dtype=torch.int32))
                     for k, v in self.chat.items()}
        buf = io.BytesIO()
        torch.save(c, buf)
        with open(path, "wb") as f:
            f.write(gzip.compress(buf.getvalue(), 6))

    def index(self):
        for items in self.chat.values():
            items.sort(key=lambda pr: len(pr[0]) + len(pr[1]))
        self.chat_len = {k: [len(p) + len(r) for p, r in v] for k, v in self.chat.items()}
        self.keys = list(MIX)
        print(json.dumps({"stream_tokens": {k: len(v) for k, v in self.streams.items()},
                          "chat_items": {k: len(v) for k, v in self.chat.items()}}), flush=True)

    def __init__(self, data_dir, tok, seed):
        self.vocab_size = tok.get_vocab_size()
        self.eos = tok.token_to_id("<|endoftext|>")
        self.eot = tok.token_to_id("<|eot_id|>")
        self.mask = tok.token_to_id("<|mdm_mask|>")
        streams = {"prose": [], "facts": []}
        with open(os.path.join(data_dir, "prose.jsonl")) as f:
            for line in f:
                d = json.loads(line)
                key = "facts" if d["source"] == "facts" else "prose"
                streams[key].extend(tok.encode(d["text"]).ids + [self.eos])
        self.streams = {k: torch.tensor(v, dtype=torch.long) for k, v in streams.items()}
        self.chat = {"arithmetic": [], "qa": [], "reversal": [], "infill": [], "wordchat": [], "copy": [], "drill": []}
        files = [os.path.join(data_dir, n) for n in ("tasks.jsonl", "copy.jsonl", "drill.jsonl")]
        lines = [line for path in files if os.path.exists(path) for line in open(path)]
        for line in lines:
            t = json.loads(line)
            key = t["task"] if t["task"] in self.chat else "wordchat"
            p = prompt_ids(tok, t["prompt"])
            r = tok.encode(t["response"]).ids + [self.eot]
            self.chat[key].append((p, r))
        self.index()

    def fitting(self, src, L, tight=0):
        """Index range [lo, hi) of a chat source's items that fit a canvas of L (items are sorted
        by length); with tight > 0 only items longer than L - tight, so the EOS tail after the
        answer is shorter than `tight` (no canvas that is mostly padding)."""
        hi = bisect.bisect_right(self.chat_len[src], L)
        lo = bisect.bisect_right(self.chat_len[src], L - tight) if tight > 0 else 0
        return lo, max(lo, hi)

    def batch(self, rng, B, L, tight=0):
        ids = torch.full((B, L), self.eos, dtype=torch.long)
        elig = torch.zeros((B, L), dtype=torch.bool)
        ranges = {k: self.fitting(k, L, tight) for k in self.chat}
        # sources with no item of a fitting length for this canvas sit this batch out
        # (a data cache written before a source existed lacks it: that source sits out too)
        keys = [k for k in self.keys if MIX[k] > 0 and (k in self.streams or k in ranges and ranges[k][1] > ranges[k][0])]
        srcs = []
        for b in range(B):
            src = rng.choices(keys, [MIX[k] for k in keys])[0]
            srcs.append(src)
            if src in self.streams:
                s = self.streams[src]
                o = rng.randrange(0, len(s) - L)
                ids[b] = s[o:o + L]
                elig[b] = True
            else:
                p, r = self.chat[src][rng.randrange(*ranges[src])]
                ids[b, :len(p)] = torch.tensor(p)
                ids[b, len(p):len(p) + len(r)] = torch.tensor(r)
                elig[b, len(p):] = True
        return ids, elig, srcs


class StepBatches(torch.utils.data.Dataset):
    """Batch number `step`: seeded by the step alone, so a resumed run replays the same batches
    and worker processes (--workers) can build them ahead of the training loop."""

    def __init__(self, data, seed, lengths, batch, tight):
        self.data, self.seed, self.lengths, self.batch, self.tight = data, seed, lengths, batch, tight

    def __len__(self):
        return 1 << 40

    def __getitem__(self, step):
        rng = random.Random(self.seed * 1_000_003 + step)
        L = rng.choice(self.lengths)
        return self.data.batch(rng, self.batch, L, self.tight)


def mdm_loss(model, ids, elig, mask_id, gen, amp):
    B, L = ids.shape
    # low-discrepancy t: one draw per stratum [i/B, (i+1)/B), shuffled. Same objective in
    # expectation as t ~ U(0,1) per row, much less variance for a small batch (MDLM).
    t = ((torch.arange(B) + torch.rand(B, generator=gen)) / B)[torch.randperm(B, generator=gen)]
    t = t.to(ids.device).unsqueeze(1)
    p = (1 - EPS) * t + EPS
    masked = (torch.rand(B, L, generator=gen).to(ids.device) < p) & elig
    noisy = torch.where(masked, torch.full_like(ids, mask_id), ids)
    with torch.autocast(ids.device.type if ids.device.type != "mps" else "cpu", dtype=torch.bfloat16, enabled=amp):
        logits = model(noisy, select=masked)
    ce = F.cross_entropy(logits.float(), ids[masked], reduction="none")
    w = (1.0 / p).expand(B, L)[masked]
    rows = masked.nonzero()[:, 0]
    row = torch.zeros(B, device=ids.device).index_add_(0, rows, ce * w)
    n_elig = elig.sum(1).clamp(min=1)
    loss = (row / n_elig).mean()
    # plain (unweighted) CE on masked tokens, for logging: the mean, and per row (sum, count).
    # Left on the device: a host copy every step would make the CPU wait for the GPU.
    ce_sum = torch.zeros(B, device=ids.device).index_add_(0, rows, ce.detach())
    ce_mean = ce.detach().mean() if ce.numel() else torch.zeros((), device=ids.device)
    return loss, ce_mean, (ce_sum, masked.sum(1))


def lr_at(step, total, warmup, peak, final_frac=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    prog = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * prog)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="small", choices=list(CONFIGS))
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lengths", default="48,64,64,80,96,96,112,128,128,160,288")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="auto", help="torch threads: 1, 2 or auto (re-chosen by speed)")
    ap.add_argument("--amp", default="auto", choices=["auto", "on", "off"], help="bf16 autocast")
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--ckpt", default=None, help="checkpoint path (default <work>/ckpt.pt)")
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop (and checkpoint) at this step; the lr schedule still uses --steps")
    ap.add_argument("--mix", default=None, help='JSON overriding source weights, e.g. {"prose": 0.1}')
    ap.add_argument("--data-cache", default=None,
                    help="tokenized data: read it if it exists (then neither the data files nor the "
                         "tokenizers package are needed), else build it and write it here")
    ap.add_argument("--prepare-only", action="store_true", help="write --data-cache and exit")
    ap.add_argument("--tight", type=int, default=0,
                    help="chat items only where the EOS tail after the answer is shorter than this "
                         "(0: any item that fits). Short answers in long canvases are mostly EOS "
                         "padding: compute spent on padding, and the answer's loss divided by the "
                         "padded length")
    ap.add_argument("--schedule-start", type=int, default=0,
                    help="restart warmup + cosine at this step (a later training phase)")
    ap.add_argument("--init-from", default=None,
                    help="a shipped model folder (models/demo): start from its weights instead of a "
                         "random init when no checkpoint exists (the optimizer starts fresh; use "
                         "with --schedule-start). Its tokenizer.json must equal this run's")
    ap.add_argument("--time-limit", type=float, default=0,
                    help="stop (and checkpoint) after this many seconds; a rerun resumes")
    ap.add_argument("--time-budget", type=float, default=0,
                    help="fit the run to this many seconds: after 250 steps, --steps is set from the "
                         "measured speed so the cosine schedule ends inside the budget (printed as "
                         "'== time budget'; pass that --steps to reproduce the schedule)")
    ap.add_argument("--weights-out", default=None,
                    help="also write the weights alone, in F16, at every checkpoint (no optimizer "
                         "state: a fifth of the size; export.py reads it like a checkpoint)")
    ap.add_argument("--weights-shard-mib", type=float, default=15,
                    help="--weights-out files of at most this many MiB (a bigger model: several files)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that build batches ahead of the training loop (0: build in the "
                         "loop). The batches are the same either way")
    args = ap.parse_args()

    data_dir = args.data or os.path.join(args.work, "data")
    tok_path = args.tokenizer or os.path.join(args.work, "tokenizer.json")
    ckpt_path = args.ckpt or os.path.join(args.work, "ckpt.pt")
    device = torch.device(args.device)
    max_threads = 2
    threads = 1 if args.threads == "auto" else int(args.threads)
    torch.set_num_threads(threads)
    if args.amp == "auto":
        amp = device.type == "cuda" or "avx512_bf16" in open("/proc/cpuinfo").read()
    else:
        amp = args.amp == "on"

    if args.data_cache and os.path.exists(args.data_cache):
        data = Data.load_cache(args.data_cache)
    else:
        from tokenizers import Tokenizer
        data = Data(data_dir, Tokenizer.from_file(tok_path), args.seed)
        if args.data_cache:
            data.save_cache(args.data_cache)
    if args.prepare_only:
        print(f"wrote {args.data_cache}")
        return
    cfg = CONFIGS[args.config]
    cfg.vocab_size = data.vocab_size
    lengths = [int(x) for x in args.lengths.split(",")]
    cfg.max_sequence_length = max(cfg.max_sequence_length, max(lengths))
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = LLaDA(cfg).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")
    if args.mix:
        MIX.update(json.loads(args.mix))
    mask_id = data.mask

    step = 0
    elapsed_before = 0.0
    if args.init_from and not os.path.exists(ckpt_path):
        from safetensors.torch import load_file
        if open(os.path.join(args.init_from, "tokenizer.json")).read() != open(tok_path).read():
            sys.exit(f"--init-from {args.init_from}: its tokenizer.json differs from {tok_path}; "
                     "regenerate the data and tokenizer with the same seed first")
        sd = load_file(os.path.join(args.init_from, "model.safetensors"))
        model.load_state_dict({k.removeprefix("model."): v.float() for k, v in sd.items()})
        step = args.schedule_start
        print(f"initialized from {args.init_from}; counting steps from {step}", flush=True)
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        elapsed_before = ck.get("elapsed", 0.0)
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    print(json.dumps({"config": cfg.to_dict(), "params": model.num_params(), "steps": args.steps,
                      "batch": args.batch, "lengths": lengths, "tight": args.tight,
                      "schedule_start": args.schedule_start, "mix": MIX, "lr": args.lr, "amp": amp,
                      "device": str(device), "seed": args.seed}), flush=True)

    def save():
        os.makedirs(os.path.dirname(os.path.abspath(ckpt_path)), exist_ok=True)
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "config": cfg.to_dict(), "elapsed": elapsed_before + time.time() - t0,
                    "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)
        if args.weights_out:
            # F16 weights alone, in files of at most --weights-shard-mib (the device tool brings
            # files of up to 16 MiB back): WEIGHTS.pt holds the metadata, the first tensors and
            # the names of the others (WEIGHTS.1.pt, ...), which export.py reads with it
            parts, size = [{}], 0
            for k, v in model.state_dict().items():
                nbytes = v.numel() * 2
                if parts[-1] and size + nbytes > args.weights_shard_mib * 2 ** 20:
                    parts.append({})
                    size = 0
                parts[-1][k] = v.detach().half().cpu().clone()
                size += nbytes
            base, ext = os.path.splitext(args.weights_out)
            names = [args.weights_out] + [f"{base}.{i}{ext}" for i in range(1, len(parts))]
            for i, (name, part) in enumerate(zip(names, parts)):
                d = {"model": part}
                if i == 0:
                    d.update({"step": step, "config": cfg.to_dict(), "elapsed": elapsed_before + time.time() - t0,
                              "args": vars(args), "shards": [os.path.basename(n) for n in names[1:]]})
                tmp = name + ".tmp"
                torch.save(d, tmp)
                os.replace(tmp, name)

    batches = StepBatches(data, args.seed, lengths, args.batch, args.tight)
    if args.workers > 0:
        loader = iter(torch.utils.data.DataLoader(
            batches, batch_size=None, sampler=range(step, 1 << 40), num_workers=args.workers,
            prefetch_factor=8, pin_memory=device.type == "cuda"))
    else:
        loader = (batches[s] for s in range(step, 1 << 40))
    src_index = {k: i for i, k in enumerate(data.keys)}

    t0 = time.time()
    model.train()
    ema = None
    # per source: sum of masked-token CE, count, since the last checkpoint (on the device)
    src_ce = torch.zeros(len(data.keys), device=device)
    src_n = torch.zeros(len(data.keys), device=device)
    budget_mark = None  # (step, time) where the --time-budget speed measurement starts
    tok_count = 0
    tlog = time.time()
    speed = {}  # thread count -> tokens/s in its latest window
    win_t, win_tok = time.time(), 0
    stop_at = args.stop_at or args.steps
    while step < stop_at:
        if args.time_limit and time.time() - t0 > args.time_limit:
            print(f"== time limit: stopping at step {step}", flush=True)
            save()
            break
        if args.time_budget and budget_mark is None and step - args.schedule_start >= 50:
            budget_mark = (step, time.time())
        elif args.time_budget and budget_mark and step == budget_mark[0] + 200:
            rate = 200 / (time.time() - budget_mark[1])
            left = args.time_budget - (time.time() - t0)
            args.steps = stop_at = step + max(1, int(0.97 * left * rate))
            print(f"== time budget: {rate:.1f} steps/s, --steps {args.steps}", flush=True)
        # per-step seeding (StepBatches): resuming replays the same batches
        gen = torch.Generator().manual_seed(args.seed * 7919 + step)
        ids, elig, srcs = next(loader)
        L = ids.shape[1]
        ids, elig = ids.to(device, non_blocking=True), elig.to(device, non_blocking=True)
        # auto threads: the box is shared with compilers; OpenMP with 2 threads on a busy
        # core is much slower than 1 thread. Every 25 steps try the other count for 5 steps
        # and keep whichever gave more tokens/s.
        if args.threads == "auto" and device.type == "cpu":
            phase = step % 25
            if phase == 20:
                speed[threads] = win_tok / max(1e-6, time.time() - win_t)
                threads = 3 - threads
                torch.set_num_threads(threads)
                win_t, win_tok = time.time(), 0
            elif phase == 0 and step > 0:
                speed[threads] = win_tok / max(1e-6, time.time() - win_t)
                threads = max(speed, key=speed.get)
                torch.set_num_threads(threads)
                win_t, win_tok = time.time(), 0
        s0 = args.schedule_start
        lr = lr_at(step - s0, args.steps - s0, args.warmup, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, ce, (row_ce, row_n) = mdm_loss(model, ids, elig, mask_id, gen, amp)
        row_src = torch.tensor([src_index[s] for s in srcs]).to(device, non_blocking=True)
        src_ce.index_add_(0, row_src, row_ce)
        src_n.index_add_(0, row_src, row_n.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tok_count += ids.numel()
        win_tok += ids.numel()
        lv = loss.detach()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        if step % args.log_every == 0 or step == stop_at:
            now = time.time()
            print(f"step {step} loss {lv.item():.4f} ema {ema.item():.4f} ce {ce.item():.4f} lr {lr:.2e} L {L} "
                  f"thr {threads} tok/s {tok_count / (now - tlog):.0f} "
                  f"elapsed {elapsed_before + now - t0:.0f}s", flush=True)
            tok_count = 0
            tlog = now
        if step % args.ckpt_every == 0 or step == stop_at:
            save()
            sums, counts = src_ce.tolist(), src_n.tolist()
            print("ce by source " + json.dumps({k: round(sums[i] / max(1, counts[i]), 3)
                                               for k, i in sorted(src_index.items()) if counts[i]}),
                  flush=True)
            src_ce.zero_()
            src_n.zero_()
    final = f"{ema.item():.4f}" if ema is not None else "-"
    print(f"done: {step} steps, {elapsed_before + time.time() - t0:.0f}s, final ema loss {final}", flush=True)


if __name__ == "__main__":
    main()
