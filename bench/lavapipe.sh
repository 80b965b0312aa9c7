#!/usr/bin/env bash
# The BENCHMARKS.md table on this machine's lavapipe (or any adapter), in one run: matmul GFLOP/s
# of both matmul variants; generation speed of the shipped demo model (Q4_0) on an in-domain
# prompt (a short question) for every cache mode, with and without the confidence
# threshold, at gen 128 and 256 (steps = gen length, block 32); and `unmask eval` beside each
# setting at the model card's settings (gen 48, block 16, 24 steps; accuracy, and how many
# answers are identical to cache none's). Writes JSON lines and logs to $OUT (default
# bench-results/lavapipe) and prints the markdown tables (bench/table.py); with llama.cpp built
# (bench/llama_cpp_vulkan.sh), also its Vulkan backend beside ours. About an hour on a 2-core
# VM; run it on an idle machine.
#   EVAL_LIMIT (default 20) items per task
#   GENS (default "128 256") answer lengths; the first is run twice (warm-up + measured)
#   EVAL_TASKS (default arithmetic,infill,reversal_forward,reversal_backward,reversal_whose)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench-results/lavapipe}"
mkdir -p "$out"
: > "$out/results.jsonl"
bin=./target/release/unmask
model=models/demo-q4_0.gguf
limit=${EVAL_LIMIT:-20}
tasks=${EVAL_TASKS:-arithmetic,infill,reversal_forward,reversal_backward,reversal_whose}
# A short in-domain question (a held-out reversal fact), so that prompt + 256 fit the demo
# model's context of 288; its answer is short, the rest of the canvas end-of-text padding.
prompt="Who is Fite's mother?"
cargo build --release --bin unmask
$bin bench --synthetic demo --kernels | tee "$out/kernels.jsonl"
for cache in none prefix dual; do
  for thr in "" 0.9; do
    # the first length twice (the first run warms the shaders up and is not reported), then
    # each other length once
    first=1
    for gen in ${GENS:-128 256}; do
      $bin bench --model $model --prompt "$prompt" --gen-length $gen --cache $cache ${thr:+--threshold $thr} \
        --runs $((first + 1)) | tee -a "$out/results.jsonl"
      first=0
    done
    $bin eval --model $model --limit "$limit" --tasks "$tasks" --gen-length 48 --steps 24 --block-length 16 \
      --cache $cache ${thr:+--threshold $thr} --json --verbose \
      > "$out/eval-$cache-${thr:-off}.json" 2> "$out/eval-$cache-${thr:-off}.log"
  done
done
# classifier-free guidance (two passes a step, mixed and selected on the GPU)
$bin bench --model $model --prompt "$prompt" --gen-length 128 --cache none --cfg-scale 1.0 --runs 2 | tee "$out/cfg.jsonl"
# llama.cpp's Vulkan backend beside ours on one demo-shaped file, where bench/llama_cpp_vulkan.sh
# has built it: 32 full passes over 128 positions each (llama.cpp's loop has no cache; its first
# step compiles its pipelines, ~20 s here). GGML_VK_VISIBLE_DEVICES: llama.cpp skips CPU adapters.
if [ -x .llama/llama-diffusion-cli ]; then
  cargo build --release --example write_full_size
  same="$out/demo-shape.gguf"
  target/release/examples/write_full_size "$same" --tokenizer --config models/demo/config.json >/dev/null
  GGML_VK_VISIBLE_DEVICES=0 bench/llama_cpp_bench.sh "$same" 64 64 32 32 | tee "$out/llama_cpp.jsonl"
  $bin bench --model "$same" --prompt-length 64 --gen-length 64 --steps 32 --block-length 32 --cache none --runs 2 |
    tee -a "$out/llama_cpp.jsonl"
fi
python3 bench/table.py "$out"
