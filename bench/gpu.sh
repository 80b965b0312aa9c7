#!/usr/bin/env bash
# Runs Unmask's bench, the PyTorch reference loop and llama.cpp side by side on a GPU machine
# and writes JSON lines to $OUT (or bench-results/). Prepared here, run there through the
# device tool:
#   here:  (once) download the Vulkan loader .debs into .gl/ (see the device tool's README);
#          (once) bench/llama_cpp_vulkan.sh for llama.cpp's part;
#          bench/pack_gpu.sh [all|unmask|llama]: the binaries, stripped and xz'd, into .gpu/
#   there: bench/gpu.sh [all|unmask|llama] 2>&1 | tee "$OUT/log.txt"   (carry: .gl and .gpu)
#   here:  python3 bench/gpu_table.py FILES_AT [FILES_AT_2]: the markdown tables (the GPU
#          and its clocks during each command, probes, compile statistics, generation, kernels)
# `unmask`: the cooperative-matrix test, the 8B shape against the PyTorch loops, kernels, the
# demo model, MoE and DiffusionGemma's fixture; `llama`: llama.cpp and ours on one 8B-shaped
# GGUF, then DiffusionGemma at full size.
# A session has 15 device minutes, machine starts included, and a call at most 10: the commands
# are numbered steps in priority order, and a step starts only while GPU_BUDGET_S (default 540)
# seconds since the script's start leave it 45, its timeout cut to what is left, so that one
# 600 s call ends with every started command's output. The log names the first step it left
# out; a second call resumes there with GPU_FROM=N (steps below N skipped):
#   call 1: bench/gpu.sh unmask 2>&1 | tee "$OUT/log.txt"
#   call 2: GPU_FROM=N GPU_BUDGET_S=<what is left> bench/gpu.sh unmask 2>&1 | tee "$OUT/log.txt"
#   here:   python3 bench/gpu_table.py CALL1_FILES CALL2_FILES   (folders, each with its log.txt)
set -uo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
case "$part" in all | unmask | llama) ;; *) echo "usage: bench/gpu.sh [all|unmask|llama]" >&2; exit 2 ;; esac
out="${OUT:-bench-results}"
mkdir -p "$out"
for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
ldconfig 2>/dev/null || true
if [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
# What bench/pack_gpu.sh packed (xz, or Python's lzma where xz is missing), else the build's own.
for f in .gpu/*.xz; do
  [ -e "$f" ] || continue
  xz -dkf "$f" 2>/dev/null || python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[1][:-3], "wb"))' "$f"
  chmod +x "${f%.xz}"
done
pick() { for p in "$@"; do [ -e "$p" ] && { echo "$p"; return; }; done; }
bin=${GPU_UNMASK:-$(pick .gpu/unmask target/release/unmask)}   # GPU_UNMASK: another build (tests/cli.rs)
kt=$(pick .gpu/kernels $(ls target/release/deps/kernels-* 2>/dev/null | grep -v '\.d$'))
dg=$(pick .gpu/full_size_dgemma $(ls target/release/deps/full_size_dgemma-* 2>/dev/null | grep -v '\.d$'))
wfs=$(pick .gpu/write_full_size target/release/examples/write_full_size)
llama=$(pick .gpu/llama-diffusion-cli .llama/llama-diffusion-cli)
cfg8b=$(pick .gpu/llada-8b-instruct.config.json shared/docs/llada-8b-instruct.config.json ../shared/docs/llada-8b-instruct.config.json)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
# Is the whole GPU ours, and at what clocks does it run our kernels? The 2026-12-04 numbers were
# 30-50x under what the kernels' instructions need, PyTorch's on the same machine were not: MIG
# mode, the performance state and throttle reasons once, then clocks, power and utilisation
# every half second while everything below runs (PyTorch's rows give the comparison).
nvidia-smi --query-gpu=mig.mode.current,pstate,clocks.max.sm,clocks.max.mem,power.limit --format=csv | tee -a "$out/gpu.txt"
nvidia-smi -q -d PERFORMANCE >>"$out/gpu.txt" 2>&1
nvidia-smi --query-gpu=timestamp,pstate,clocks.sm,clocks.mem,power.draw,utilization.gpu,utilization.memory \
  --format=csv -lms 500 >"$out/smi.csv" 2>&1 &
smi=$!
trap 'kill $smi 2>/dev/null' EXIT
# step WHAT: whether the next numbered step runs. It logs "+ [N] HH:MM:SS [UNMASK_*=…] WHAT"
# (gpu_table.py times the clocks by these lines) or why it is left out, and sets `left`: the
# seconds its command may take.
t0=$SECONDS
budget="${GPU_BUDGET_S:-540}"
from="${GPU_FROM:-1}"
n=0
step() {
  n=$((n + 1))
  [ "$n" -ge "$from" ] || return 1
  left=$((budget - (SECONDS - t0)))
  if [ "$left" -lt 45 ]; then
    [ -n "${resume:-}" ] || { resume=$n; echo "- [$n] $((SECONDS - t0)) s of the $budget s budget spent: this step and those after it left out; resume with GPU_FROM=$n" >&2; }
    return 1
  fi
  echo "+ [$n] $(date +%T) $(env | grep -E '^UNMASK_[A-Z_]+=' | sort | tr '\n' ' ')$*" >&2
}
# run CMD…: a step whose JSON lines go to results.jsonl (at most 150 s, or what the budget leaves).
run() { step "$*" || return 0; timeout $((left < 150 ? left : 150)) "$@" | tee -a "$out/results.jsonl"; }
if [ "$part" != llama ]; then
# First the one hardware-only path: the cooperative-matrix matmul against its CPU twin (the
# kernels test binary), and what the adapter offers.
$bin info models/demo 2>&1 | grep -E '^(adapter|kernels)' | tee "$out/adapter.txt"
if [ -n "$kt" ] && step "$kt coop"; then
  timeout $((left < 120 ? left : 120)) "$kt" coop --nocapture 2>&1 | tee "$out/coop_tests.txt"
fi
# What the platform delivers through wgpu at its simplest (seconds): a dispatch's own cost,
# streaming and workgroup-memory reads, f32 and tensor-core multiply-adds, with naga's loop
# bounding off and on. Read every kernel figure below against these as well as the data sheet.
run $bin bench --synthetic tiny --kernels probe
# What NVIDIA's compiler made of each kernel (registers, spills, local memory), where its driver
# reports it (VK_KHR_pipeline_executable_properties; a second or two, nothing runs). A kernel
# far below the probes with local memory or few waves has its cause here. Then the same with
# naga's loop bounding on (the setting of the 2026-12-04 numbers), and without naga's index
# clamps (what they cost each kernel on NVIDIA's compiler: README "Index clamps kept out of the
# inner loops").
if step "$bin bench --kernels compile (loop bounding off, on; no clamps)"; then
  timeout 60 $bin bench --kernels compile >"$out/compile.jsonl" 2>&1; tail -c 600 "$out/compile.jsonl"
  UNMASK_LOOP_BOUNDING=on timeout 60 $bin bench --kernels compile >"$out/compile-bounded.jsonl" 2>&1
  UNMASK_BOUNDS_CHECKS=off timeout 60 $bin bench --kernels compile >"$out/compile-unclamped.jsonl" 2>&1
fi
# Where the matmuls' time goes (new on 2026-12-05, fifth session; seconds: no model is made):
# Q4_0 q_proj and ff_out at 288 and 32 rows on each core, whole and without the loads, the
# multiply-adds, or the loads and workgroup stores, and with only the loop's barriers left
# (gpu_table.py's "Where a matmul's time goes"). If "barriers only" is most of "whole", the cost
# is per slice, not per value; read it against the probes above.
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 224 --kernels phases
# Then what issue 19's targets name, most important first (a call cut short keeps what ran):
# the 8B-shaped random model at Q4_0 (ours) with dual cache + threshold 0.9, gen 256. Since
# 2026-12-04's fifth session the cooperative path fuses too (Q/K/V with RoPE and f16 K/V in one
# launch and one merge, gate/up in one): 12 launches a cached step's layer where the 78.9 ms/step
# run had 22.
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
# Full passes over 320 positions (32 steps, no cache), cooperative matrices where the adapter
# has them, then on f32 ALUs ("coop" in the JSON says which ran).
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --steps 32 --cache none --runs 1
UNMASK_COOP=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --steps 32 --cache none --runs 1
# A/B runs of the headline, each the evidence for a default: attention_flash.wgsl (K/V read in
# its loops) in place of the default attention_tiles.wgsl (K/V staged in workgroup memory; new
# on 2026-12-04, not yet measured on a GPU), and naga's loop bounding back on (off since
# 2026-12-04's fifth session: its 64-bit counter in every loop keeps drivers from unrolling,
# gfx-rs/wgpu#7698; every run before had it). (Split-K's fill: 1024 took 84.2 ms a step against
# 2048's 78.9 on 2026-12-04; `UNMASK_SPLIT_FILL=4096` tries more.)
UNMASK_ATTENTION=flash run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
UNMASK_LOOP_BOUNDING=on run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
# Without f16 matmul inputs (new on 2026-12-05, sixth session: on cooperative matrices the norms,
# attention and gate · up write the matmuls' x in f16, the same values; "half_inputs" in the
# JSON), and without the short cooperative tiles (32×128 for at most 32 rows, no zero rows, half
# the slices).
UNMASK_HALF_INPUTS=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
UNMASK_COOP_SHORT=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
# With 64×128 cooperative tiles for more than 32 rows (eight subgroups; new on 2026-12-05, sixth
# session, off by default): full passes over 320 positions.
UNMASK_COOP_TILE=64x128 run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --steps 32 --cache none --runs 1
# And on f32 ALUs, the browsers' path on GPUs: norms folded too, 10 launches a cached step's
# layer against the cooperative path's 12 (coop off took 88.5 ms a step at fill 1024 on
# 2026-12-04, unfused then).
UNMASK_COOP=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
# The same with the f32 core's 8×8 register tile (matmul_wide.wgsl, new on 2026-12-05: half the
# workgroup-memory reads per multiply-add; 10-15 % slower on lavapipe, unmeasured on GPUs). The
# --kernels run above has both tiles for every f32 matmul ("register_tile").
UNMASK_COOP=off UNMASK_REGISTER_TILE=8x8 run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
# And without naga's index clamps (new on 2026-12-05, second session; the probes above have a
# line per probe so too): whether they cost anything on this GPU.
UNMASK_BOUNDS_CHECKS=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
# The official loop (32 steps) and the Fast-dLLM-style one (dual cache + threshold 0.9; random
# weights are rarely that sure, so it commits about one token a step, as ours does on the same
# shape: compare ms per step), on one copy of the weights.
run python3 bench/reference_generate.py --synthetic "$cfg8b" --prompt-length 64 --gen-length 256 --steps 32 --runs 1 --loop both --threshold 0.9
# Kernels at the 8B shape: matmul GB/s and GFLOP/s (f32 ALUs and cooperative matrices where the
# adapter has them), attention (portable, flash and tiles; f32 and f16 K/V) vs the peaks.
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 224 --kernels
# The matmuls alone without f16 inputs ("x" in their lines: what halving x's bytes gave), without
# the short tiles ("coop_tile"), and with 64×128 tiles.
UNMASK_HALF_INPUTS=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 224 --kernels matmul
UNMASK_COOP_SHORT=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 224 --kernels matmul
UNMASK_COOP_TILE=64x128 run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 224 --kernels matmul
# Demo model: ours (every cache, with/without threshold) vs the reference loops.
for cache in none prefix dual; do
  run $bin bench --model models/demo --gen-length 128,256 --cache $cache --runs 2
  run $bin bench --model models/demo --gen-length 128,256 --cache $cache --threshold 0.9 --runs 2
done
run python3 bench/reference_generate.py --model models/demo --gen-length 128 256 --runs 2 --loop both --threshold 0.9
# The grouped expert matmul (tiled on GPUs; the CPU-lanes kernel where the adapter runs it) at
# an MoE shape (bench/moe-shape.config.json: 2048 wide, 64 experts of 1024, top-8; a shape, not
# a released checkpoint's config): a full pass of 288 rows and a cached step of 32.
run $bin bench --synthetic bench/moe-shape.config.json --prompt-length 64 --gen-length 224 --kernels moe
# The same at 1024 rows: on the H200 it took 7.4 ms at both 288 and 32 rows (2026-12-04), a time
# that did not scale with the work; a third row count says whether it is fixed per launch.
run $bin bench --synthetic bench/moe-shape.config.json --prompt-length 64 --gen-length 960 --kernels moe
# DiffusionGemma-26B-A4B's experts (bench/dgemma-experts-shape.config.json: 2816 wide, 128
# experts of 704, top-8) at a 256-token canvas: 16 pairs an expert, every expert's weights read
# once a projection; on lavapipe the tiled layout's gate projection takes 6.2 s at 256 rows (12 s
# before 2026-12-06, when CPU adapters launched a workgroup for every tile an expert could get;
# GPUs still do).
run $bin bench --synthetic bench/dgemma-experts-shape.config.json --prompt-length 32 --gen-length 224 --kernels moe
# DiffusionGemma's soft embedding at its shape (the same config: vocabulary 262144 × 2816, Q8_0,
# a 256-token canvas): one launch of 352 workgroups each walking all the vocabulary, then split
# across it as GPUs now run it (new on 2026-12-07: 6 slices, 2112 workgroups, and the merge).
run $bin bench --synthetic bench/dgemma-experts-shape.config.json --prompt-length 32 --gen-length 224 --kernels soft
# The MoE shape generating (dual cache + threshold 0.9, gen 256): since 2026-12-05's seventh
# session its experts run on cooperative matrices too (moe_coop.wgsl; "expert matmul … (coop)"
# among the kernels), then all of it on f32 ALUs; the --kernels moe lines above have both cores.
run $bin bench --synthetic bench/moe-shape.config.json --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
UNMASK_COOP=off run $bin bench --synthetic bench/moe-shape.config.json --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
run $bin bench --model tests/data/families/diffusion_gemma --prompt-length 32 --gen-length 64 --runs 2
fi
# llama.cpp's llama-diffusion-cli with its Vulkan backend (KHR cooperative matrices) beside
# ours on one file: the 8B-shaped Q4_0 GGUF with a byte-level tokenizer (zero block weights:
# the time of a pass does not depend on them). llama.cpp's loop has no cache, so ours runs
# without one too: a full pass over prompt + answer per step, 32 steps, blocks of 32.
if [ "$part" != unmask ]; then
  if [ -n "$llama" ] && [ -n "$wfs" ]; then
    big=/tmp/llada-8b-shape.gguf
    "$wfs" "$big" --tokenizer >/dev/null
    # 320 positions make 10 of llama.cpp's blocks (8 over the answer, 2 past its end): 40 steps
    # give the answer's blocks 4 steps each, as ours get from --steps 32; 320, one token a step.
    export LLAMA_DIFFUSION_CLI="$llama"
    run bench/llama_cpp_bench.sh "$big" 64 256 40 32
    run bench/llama_cpp_bench.sh "$big" 64 256 320 32
    run $bin bench --model "$big" --prompt-length 64 --gen-length 256 --steps 32 --block-length 32 --cache none --runs 1
    # Its weights make every position predict the mask token, so a threshold run stops after a
    # step (nothing to commit); a dual-cache run of 256 fixed steps times the cached steps.
    run $bin bench --model "$big" --prompt-length 64 --gen-length 256 --steps 256 --cache dual --runs 1
  else
    echo "llama.cpp part skipped: bench/pack_gpu.sh llama packs it (after bench/llama_cpp_vulkan.sh)" | tee "$out/llama_cpp.txt"
  fi
  # DiffusionGemma at the 26B-A4B shape (all 30 layers, Q4_0, zero block weights, random
  # routers: since 2026-12-05's eighth session a canvas reaches every expert, as a real model's
  # does; before, all tokens took the same eight): one decoder step of a 256 canvas with and
  # without self-conditioning, first and warm (the full_size_dgemma test binary).
  if [ -n "$dg" ] && step "$dg (UNMASK_DG_LAYERS=30)"; then
    UNMASK_DG_LAYERS=30 UNMASK_BIG_TMP=/tmp timeout $((left < 240 ? left : 240)) "$dg" --ignored --nocapture 2>&1 | tee "$out/dgemma_full.txt"
  fi
fi
echo "results in $out/results.jsonl ($n steps, $((SECONDS - t0)) s${resume:+; resume with GPU_FROM=$resume})" >&2
