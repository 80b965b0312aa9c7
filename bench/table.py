#!/usr/bin/env python3
"""Markdown tables from bench/lavapipe.sh's output folder (argv[1])."""
import json
import os
import sys

d = sys.argv[1]
kern = [json.loads(l) for l in open(os.path.join(d, "kernels.jsonl")) if l.startswith("{")]
# What the platform delivers (the probes, loop bounding off and on), then the matmuls.
probes = [k for k in kern if k.get("kernel") == "probe"]
if probes:
    print("| probe | loop bounding | figure |")
    print("|---|---|---|")
    for k in probes:
        fig = {"dispatch": lambda k: f"{k['us']:.0f} µs ({k['wall_us']:.0f} µs with a readback)",
               "read": lambda k: f"{k['gbps']:.1f} GB/s", "shared": lambda k: f"{k['gbps']:.1f} GB/s",
               "fma": lambda k: f"{k['gflops']:.1f} GFLOP/s", "coop": lambda k: f"{k['gflops']:.1f} GFLOP/s"}[k["probe"]](k)
        print(f"| {k['probe']} | {'on' if k['loop_bounding'] else 'off'} | {fig} |")
    print()
print("| weights | shape (M×N×K) | tiled GFLOP/s | cpu-lanes GFLOP/s | speed-up |")
print("|---|---|---|---|---|")
# Unsplit matmuls on f32 ALUs with the default 4×4 register tile, one row per shape and M.
mm = [k for k in kern if k.get("kernel") == "matmul" and not k.get("coop") and k.get("register_tile", 4) == 4 and k.get("splits", 1) == 1]
by = {(k["variant"], k["dtype"], k["shape"], k["m"]): k for k in mm}
for (v, dt, sh, m), k in by.items():
    if v != "tiled":
        continue
    s = by.get(("cpu-lanes", dt, sh, m)) or by.get(("subgroup", dt, sh, m))
    sg = f"{s['gflops']:.2f}" if s else "n/a"
    up = f"{s['gflops'] / k['gflops']:.1f}×" if s else ""
    print(f"| {dt} | {sh} {k['m']}×{k['n']}×{k['k']} | {k['gflops']:.2f} | {sg} | {up} |")

def answers(log):
    out = []
    for line in open(log):
        if line.startswith("[ok]") or line.startswith("[xx]"):
            out.append(line.split(" → ", 1)[-1].strip())
    return out

def accuracy(tag):
    ev = json.load(open(os.path.join(d, f"eval-{tag}.json")))
    return sum(t["correct"] for t in ev["tasks"]), sum(t["n"] for t in ev["tasks"]), ev

base = answers(os.path.join(d, "eval-none-off.log"))
c0, n0, _ = accuracy("none-off")
print()
print("| cache | threshold | gen | tokens/s | ms/step | steps | forward passes | eval accuracy | vs none | answers identical to none |")
print("|---|---|---|---|---|---|---|---|---|---|")
rows = [json.loads(l) for l in open(os.path.join(d, "results.jsonl")) if l.startswith("{")]
for r in rows:
    thr = r.get("threshold")
    thr = round(thr, 4) if thr is not None else None  # an f32 in the JSON (0.8999999761581421)
    tag = f"{r['cache']}-{thr if thr is not None else 'off'}"
    c, n, _ = accuracy(tag)
    a = answers(os.path.join(d, f"eval-{tag}.log"))
    same = sum(x == y for x, y in zip(a, base))
    print(f"| {r['cache']} | {thr if thr is not None else '—'} | {r['gen_length']} | {r['tokens_per_second']:.1f} | "
          f"{r['ms_per_step']:.1f} | {r['steps']} | {r.get('model_passes', '')} | {c}/{n} = {100 * c / n:.1f} % | "
          f"{100 * (c / n - c0 / n0):+.1f} points | {same}/{len(base)} |")

# accuracy per task of every setting
tags = [f"{c}-{t}" for c in ("none", "prefix", "dual") for t in ("off", "0.9")]
tags = [t for t in tags if os.path.exists(os.path.join(d, f"eval-{t}.json"))]
print()
print("| task | " + " | ".join(tags) + " |")
print("|---|" + "---|" * len(tags))
per = {t: {x["task"]: x for x in accuracy(t)[2]["tasks"]} for t in tags}
for task in per[tags[0]]:
    print(f"| {task} | " + " | ".join(f"{per[t][task]['correct']}/{per[t][task]['n']}" for t in tags) + " |")
print("| eval time (s) | " + " | ".join(f"{accuracy(t)[2]['total_ms'] / 1000:.0f}" for t in tags) + " |")

cfgp = os.path.join(d, "cfg.jsonl")
if os.path.exists(cfgp):
    for r in (json.loads(l) for l in open(cfgp) if l.startswith("{")):
        print(f"\nCFG scale {r['cfg_scale']}, cache {r['cache']}, gen {r['gen_length']}: "
              f"{r['tokens_per_second']:.1f} tokens/s, {r['ms_per_step']:.1f} ms/step, {r['model_passes']} passes")
