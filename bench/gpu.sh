#!/usr/bin/env bash
# Runs Unmask's bench and the PyTorch reference loop side by side on a GPU machine and writes
# JSON lines to $OUT (or bench-results/). Prepared here, run there through the device tool:
#   here:  cargo build --release; (once) download the Vulkan loader .debs into .gl/ (see the
#          device tool's README);
#   there: bench/gpu.sh unmask     (carry: .gl, target/release/unmask, and the release test
#          binaries target/release/deps/kernels-* and full_size_dgemma-*)
#          bench/gpu.sh llama      (carry: .gl, .llama, target/release/unmask and
#          target/release/examples/write_full_size; .llama from bench/llama_cpp_vulkan.sh)
# Two calls, because what both carry would pass the device tool's 64 MiB; `all` runs both
# parts where everything is present. Each part must finish in under 8 minutes.
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
bin=./target/release/unmask
cfg8b=shared/docs/llada-8b-instruct.config.json
[ -e "$cfg8b" ] || cfg8b=../shared/docs/llada-8b-instruct.config.json
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
run() { echo "+ $*" >&2; timeout 150 "$@" | tee -a "$out/results.jsonl"; }
if [ "$part" != llama ]; then
# First the one hardware-only path: the cooperative-matrix matmul against its CPU twin (carry
# the test binary: target/release/deps/kernels-*), and what the adapter offers.
$bin info models/demo 2>&1 | grep '^adapter' | tee "$out/adapter.txt"
kt=$(ls target/release/deps/kernels-* 2>/dev/null | grep -v '\.d$' | head -1)
if [ -n "$kt" ]; then
  echo "+ $kt coop" >&2
  timeout 120 "$kt" coop --nocapture 2>&1 | tee "$out/coop_tests.txt"
fi
# Demo model: ours (every cache, with/without threshold) vs the reference loop.
for cache in none prefix dual; do
  run $bin bench --model models/demo --gen-length 128,256 --cache $cache --runs 2
  run $bin bench --model models/demo --gen-length 128,256 --cache $cache --threshold 0.9 --runs 2
done
run python3 bench/reference_generate.py --model models/demo --gen-length 128 256 --runs 2 --loop both --threshold 0.9
# 8B-shaped random model at Q4_0 (ours) vs bf16 reference (PyTorch).
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --steps 32 --cache none --runs 1
# The same full passes on f32 ALUs (cooperative matrices off; "coop" in the JSON says which ran).
UNMASK_COOP=off run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 256 --steps 32 --cache none --runs 1
# The official loop (32 steps) and the Fast-dLLM-style one (dual cache + threshold 0.9; random
# weights are rarely that sure, so it commits about one token a step, as ours does on the same
# shape: compare ms per step), on one copy of the weights.
run python3 bench/reference_generate.py --synthetic "$cfg8b" --prompt-length 64 --gen-length 256 --steps 32 --runs 1 --loop both --threshold 0.9
# Kernels at the 8B shape: matmul GB/s and GFLOP/s (f32 ALUs and cooperative matrices where the
# adapter has them), attention (portable vs flash, f32 and f16 K/V) vs the peaks.
run $bin bench --synthetic "$cfg8b" --quant q4_0 --prompt-length 64 --gen-length 224 --kernels
# DiffusionGemma: the fixture, then the 26B-A4B shape (all 30 layers, Q4_0, zero weights) for
# one decoder step of a 256 canvas with and without self-conditioning (carry the test binary:
# target/release/deps/full_size_dgemma-*).
run $bin bench --model tests/data/families/diffusion_gemma --prompt-length 32 --gen-length 64 --runs 2
dg=$(ls target/release/deps/full_size_dgemma-* 2>/dev/null | grep -v '\.d$' | head -1)
if [ -n "$dg" ]; then
  echo "+ $dg (UNMASK_DG_LAYERS=30)" >&2
  UNMASK_DG_LAYERS=30 UNMASK_BIG_TMP=/tmp timeout 240 "$dg" --ignored --nocapture 2>&1 | tee "$out/dgemma_full.txt"
fi
fi
# llama.cpp's llama-diffusion-cli with its Vulkan backend (KHR cooperative matrices) beside
# ours on one file: the 8B-shaped Q4_0 GGUF with a byte-level tokenizer (zero block weights:
# the time of a pass does not depend on them). llama.cpp's loop has no cache, so ours runs
# without one too: a full pass over prompt + answer per step, 32 steps, blocks of 32.
if [ "$part" != unmask ]; then
  wfs=target/release/examples/write_full_size
  [ ! -e .llama/llama-diffusion-cli.xz ] || [ -e .llama/llama-diffusion-cli ] || xz -dk .llama/llama-diffusion-cli.xz
  if [ -x .llama/llama-diffusion-cli ] && [ -x "$wfs" ]; then
    big=/tmp/llada-8b-shape.gguf
    "$wfs" "$big" --tokenizer >/dev/null
    # 320 positions are 10 of llama.cpp's blocks: 40 steps give the answer's 8 blocks 4 steps
    # each, as ours get from --steps 32; 320 steps give one token a step.
    run bench/llama_cpp_bench.sh "$big" 64 256 40 32
    run bench/llama_cpp_bench.sh "$big" 64 256 320 32
    run $bin bench --model "$big" --prompt-length 64 --gen-length 256 --steps 32 --block-length 32 --cache none --runs 1
    run $bin bench --model "$big" --prompt-length 64 --gen-length 256 --cache dual --threshold 0.9 --runs 1
  else
    echo "llama.cpp part skipped: carry .llama (bench/llama_cpp_vulkan.sh) and $wfs" | tee "$out/llama_cpp.txt"
  fi
fi
echo "results in $out/results.jsonl"
