#!/usr/bin/env bash
# The BENCHMARKS.md table on this machine's lavapipe (or any adapter): matmul GFLOP/s of both
# matmul variants, generation speed of the shipped demo model (Q4_0) for every cache mode with
# and without the confidence threshold at gen 128 and 256, and `unmask eval` beside each
# setting (accuracy, and how many answers are identical to cache none's). Writes JSON lines and
# logs to $OUT (default bench-results/lavapipe) and prints the markdown table
# (bench/table.py). Takes ~25 min on a 2-core VM; run it on an idle machine.
#   EVAL_LIMIT (default 6) items per task; EVAL_TASKS (default arithmetic,infill,reversal_forward,reversal_backward)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench-results/lavapipe}"
mkdir -p "$out"
: > "$out/results.jsonl"
bin=./target/release/unmask
model=models/demo-q4_0.gguf
limit=${EVAL_LIMIT:-6}
tasks=${EVAL_TASKS:-arithmetic,infill,reversal_forward,reversal_backward}
cargo build --release --bin unmask
$bin bench --synthetic demo --kernels | tee "$out/kernels.jsonl"
for cache in none prefix dual; do
  for thr in "" 0.9; do
    $bin bench --model $model --gen-length 128,256 --cache $cache ${thr:+--threshold $thr} --runs 2 | tee -a "$out/results.jsonl"
    $bin eval --model $model --limit "$limit" --tasks "$tasks" --gen-length 64 --steps 64 --block-length 32 \
      --cache $cache ${thr:+--threshold $thr} --json --verbose \
      > "$out/eval-$cache-${thr:-off}.json" 2> "$out/eval-$cache-${thr:-off}.log"
  done
done
# classifier-free guidance (two passes a step, mixed and selected on the GPU)
$bin bench --model $model --gen-length 128 --cfg-scale 1.0 --runs 2 | tee "$out/cfg.jsonl"
python3 bench/table.py "$out"
