#!/usr/bin/env python3
"""Markdown tables from bench/gpu.sh's output folders: one per call (a second call resumes the
first with GPU_FROM), each with its log.txt (gpu.sh's stderr: each step's start time, for the
clocks during each command); a log elsewhere can be named after its folder.

    python3 bench/gpu_table.py CALL1_FILES [CALL2_FILES ...] [LOG ...]

Prints, in the order to read them: the GPU (MIG mode, performance state, throttle reasons),
the clocks and utilisation while each command ran (from smi.csv), the platform probes, what
the driver's compiler made of each kernel (compile.jsonl, loop bounding off, beside
compile-bounded.jsonl, on, and compile-unclamped.jsonl, without naga's index clamps), the
generation rows (ours, PyTorch's, llama.cpp's) and the kernels
alone. Parts whose files are missing are left out."""
import csv
import json
import os
import re
import statistics
import sys

dirs = [a for a in sys.argv[1:] if os.path.isdir(a)]
logs = [a for a in sys.argv[1:] if os.path.isfile(a)]
logs += [p for p in (os.path.join(d, "log.txt") for d in dirs) if os.path.exists(p) and not any(os.path.samefile(p, q) for q in logs)]


def paths(name):
    """`name` in each folder that has it, in the calls' order."""
    return [p for p in (os.path.join(d, name) for d in dirs) if os.path.exists(p)]


def path(name):
    return next(iter(paths(name)), None)


def jsonl(name):
    out = []
    for p in paths(name):
        for line in open(p, errors="replace"):
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def table(head, rows):
    if not rows:
        return
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


def fmt(x, digits=2):
    return "—" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


# The GPU and whether it is all ours.
if path("gpu.txt"):
    print("### GPU")
    for line in open(path("gpu.txt"), errors="replace"):
        if line.strip() and not line.startswith("=="):
            print("    " + line.rstrip())

# Clocks and utilisation while each command ran: smi.csv's samples between a "+ [N] HH:MM:SS
# cmd" line of the logs and the next.
samples = []
for smi_csv in paths("smi.csv"):
    rows = list(csv.reader(open(smi_csv, errors="replace")))
    if rows:
        head = [h.strip() for h in rows[0]]

        def col(prefix):
            return next((i for i, h in enumerate(head) if h.startswith(prefix)), None)

        t, sm, mem, pw, util, st = col("timestamp"), col("clocks.current.sm"), col("clocks.current.memory"), col("power.draw"), col("utilization.gpu"), col("pstate")
        num = lambda s: float(re.sub(r"[^0-9.]", "", s) or "nan")
        for r in rows[1:]:
            if t is None or len(r) != len(head):
                continue
            m = re.search(r"(\d\d):(\d\d):(\d\d)", r[t])
            if m:
                secs = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])
                samples.append((secs, num(r[sm]) if sm is not None else None, num(r[util]) if util is not None else None,
                                num(r[pw]) if pw is not None else None, r[st].strip() if st is not None else ""))
if samples:
    spans = []
    starts = []
    for log in logs:
        for line in open(log, errors="replace"):
            m = re.match(r"\+ (?:\[(\d+)\] )?(\d\d):(\d\d):(\d\d) (.*)", line)
            if m:
                starts.append((int(m[2]) * 3600 + int(m[3]) * 60 + int(m[4]), (f"[{m[1]}] " if m[1] else "") + m[5][:90]))
    starts.sort()
    if starts:
        spans = [(s, starts[i + 1][0] if i + 1 < len(starts) else 10**9, what) for i, (s, what) in enumerate(starts)]
    if not spans:
        spans = [(0, 10**9, "the whole run")]
    out = []
    for s, e, what in spans:
        during = [x for x in samples if s <= x[0] < e]
        if not during:
            continue
        med = lambda i: statistics.median([x[i] for x in during if x[i] is not None and x[i] == x[i]] or [float("nan")])
        states = sorted({x[4] for x in during if x[4]})
        out.append([f"`{what}`", len(during), f"{med(1):.0f}", f"{med(2):.0f} %", f"{med(3):.0f} W", ", ".join(states)])
    print("\n### Clocks while each command ran (medians of the 0.5 s samples)")
    table(["command", "samples", "SM MHz", "GPU busy", "power", "pstate"], out)

# Steps a call left out for its time budget (gpu.sh's "- [N] …" lines) and each call's end.
ends = [line.rstrip() for log in logs for line in open(log, errors="replace") if line.startswith(("- [", "results in "))]
if ends:
    print("\n### Calls")
    for line in ends:
        print("    " + line)

# The platform probes.
results = jsonl("results.jsonl")
probes = [r for r in results if r.get("kernel") == "probe"]
if probes:
    print("\n### Platform probes")
    fig = {"dispatch": lambda k: f"{k['us']:.1f} µs ({k['wall_us']:.0f} µs with a readback)", "read": lambda k: f"{k['gbps']:.0f} GB/s",
           "shared": lambda k: f"{k['gbps']:.0f} GB/s", "fma": lambda k: f"{k['gflops']:.0f} GFLOP/s", "coop": lambda k: f"{k['gflops']:.0f} GFLOP/s"}
    table(["probe", "loop bounding", "bounds checks", "figure"],
          [[k["probe"], k.get("loop_bounding"), k.get("bounds_checks"), fig.get(k["probe"], lambda k: "?")(k)] for k in probes])

# What the driver's compiler made of each kernel: the statistics that say registers, spills,
# local/scratch memory, shared memory and occupancy, whatever the driver calls them.
compiled = jsonl("compile.jsonl")
if compiled:
    bounded = {(c["kernel"], c["register_tile"]): c for c in jsonl("compile-bounded.jsonl")}
    unclamped = {(c["kernel"], c["register_tile"]): c for c in jsonl("compile-unclamped.jsonl")}
    wanted = re.compile(r"regist|gpr|spill|scratch|local|stack|shared|lds|occupan|subgroups per|warps|waves|instructions", re.I)
    keys = []
    for c in compiled:
        for k in c["compiled"]:
            if wanted.search(k) and not re.search(r"pre-sched", k, re.I) and k not in keys:
                keys.append(k)
    spills = [k for k in keys if re.search(r"spill|scratch|local|stack", k, re.I)]
    counts = [k for k in keys if re.search(r"instruction|regist|gpr", k, re.I) and k not in spills]
    print(f"\n### Compiled by {compiled[0].get('device')} ({compiled[0].get('driver')}); \"LB on\": with naga's loop bounding; "
          "\"no clamps\": without naga's index clamps")
    rows = []
    for c in compiled:
        name = c["kernel"] + ((", 64×128" if c.get("coop_tile") else ", 8×8") if c.get("register_tile") == 8 else "")
        s = c["compiled"]
        if "skipped" in s or "error" in s:
            rows.append([f"`{name}`", s.get("skipped") or s.get("error")] + [""] * (len(keys) + 2))
            continue
        b = bounded.get((c["kernel"], c["register_tile"]), {}).get("compiled", {})
        u = unclamped.get((c["kernel"], c["register_tile"]), {}).get("compiled", {})
        rows.append([f"`{name}`", ""] + [fmt(s.get(k)) for k in keys] + [" / ".join(fmt(b.get(k)) for k in spills) or "—",
                                                                       " / ".join(fmt(u.get(k)) for k in counts) or "—"])
    table(["kernel", "skipped"] + keys + ["LB on: " + " / ".join(spills), "no clamps: " + " / ".join(counts)], rows)

# Generation: ours, PyTorch's and llama.cpp's.
def achieved(r):
    # What the run's passes computed over its time (ours only), with the share of the peak.
    g = r.get("achieved_gflops")
    if g is None:
        return ""
    p = r.get("of_peak")
    return fmt(g, 1) + (f" ({100 * p:.1f} %)" if p is not None else "")


gen = [r for r in results if "ms_per_step" in r or r.get("engine", "").startswith("pytorch")]
if gen:
    print("\n### Generation")
    rows = []
    for r in gen:
        engine = r.get("engine") or f"unmask ({r.get('kernels')}, coop {r.get('coop')}, fused {r.get('fused')}, f16 inputs {r.get('half_inputs')}, short coop tiles {r.get('coop_short')}, 64×128 {r.get('coop_wide')}, {r.get('attention')}, K/V {r.get('kv')})"
        if r.get("family") == "diffusion-gemma":
            engine = f"unmask (DiffusionGemma, coop {r.get('coop')}, K/V {r.get('kv')})"
        ms = r.get("ms_per_step", r.get("ms_per_forward"))
        tps = r.get("tokens_per_second", r.get("tokens_per_s"))
        kernels = r.get("gpu_ms_per_kernel") or {}
        top = ", ".join(f"{k} {v:.1f}" for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])[:4])
        rows.append([engine, r.get("model", ""), r.get("prompt_length"), r.get("gen_length"), r.get("cache"), fmt(r.get("threshold")), r.get("steps"),
                     fmt(ms), fmt(tps, 1), achieved(r), top])
    table(["engine", "model", "prompt", "gen", "cache", "threshold", "steps", "ms per step", "tokens/s", "GFLOP/s (of peak)", "GPU ms a pass, largest kernels"], rows)

# Kernels alone.
kern = [r for r in results if (r.get("kernel") in ("matmul", "moe_matmul", "soft_embed") or str(r.get("kernel", "")).startswith("attention")) and not r.get("skip")]
if kern:
    print("\n### Kernels alone")
    rows = []
    for k in kern:
        what = k["kernel"]
        if what == "matmul":
            what += f" {k.get('dtype')} {k.get('shape')} {k.get('m')}×{k.get('n')}×{k.get('k')}, {k.get('variant')}, coop {k.get('coop')}{' ' + k['coop_tile'] if k.get('coop_tile') else ''}, x {k.get('x')}, {k.get('register_tile')}×{k.get('register_tile')}, {k.get('splits')} slices"
        elif what == "soft_embed":
            what += f" {k.get('dtype')} {k.get('rows')}×{k.get('vocab')}×{k.get('dim')}, {k.get('chunks')} chunks, {k.get('splits')} slices"
        elif what.startswith("attention"):
            what += " " + ", ".join(f"{x} {k.get(x)}" for x in ("variant", "lq", "lk", "heads", "kv_heads", "head_dim", "kv", "splits") if x in k)
        else:
            what += f" {k.get('dtype')} {k.get('shape')} rows {k.get('rows')}, {k.get('variant')}, coop {k.get('coop')}, {k.get('pairs_per_tile')} pairs a tile"
        rows.append([what, fmt(k.get("ms"), 3), fmt(k.get("gflops"), 0), fmt(k.get("gbps"), 0), fmt(k.get("of_probe")), fmt(k.get("of_probe_read")), k.get("timed_by")])
    table(["kernel", "ms", "GFLOP/s", "GB/s", "of the f32/tensor probe", "of the read probe", "timed by"], rows)

# `--kernels phases`: each tiled matmul whole ("skip": []) and with parts of its k loop left out,
# in ms (a key with one line is a `--kernels` row: left out).
phases = {}
for k in results:
    if k.get("kernel") != "matmul" or "skip" not in k:
        continue
    core = (f"coop {k.get('coop_tile') or ''}".strip() if k.get("coop") else f"f32 {k.get('register_tile')}×{k.get('register_tile')}") + (", x f16" if k.get("x") == "f16" else "")
    key = (k.get("dtype"), k.get("shape"), k.get("m"), k.get("n"), k.get("k"), core, k.get("splits"))
    phases.setdefault(key, {})[" + ".join(k["skip"]) or "-"] = k.get("ms")
phases = {key: v for key, v in phases.items() if len(v) > 1}
if phases:
    print("\n### Where a matmul's time goes (ms; the k loop without …)")
    skips = ["-", "loads", "multiply-adds", "loads + workgroup stores", "loads + multiply-adds + workgroup stores"]
    rows = [[f"{dt} {sh} {m}×{n}×{kk}, {core}, {sp} slices"] + [fmt(v.get(x), 3) for x in skips] for (dt, sh, m, n, kk, core, sp), v in phases.items()]
    table(["matmul", "whole", "no loads", "no multiply-adds", "multiply-adds only", "barriers only"], rows)
