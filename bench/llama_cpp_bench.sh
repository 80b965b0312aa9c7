#!/usr/bin/env bash
# One llama.cpp diffusion run timed, as one JSON line (the fields of `unmask bench`'s rows):
#   bench/llama_cpp_bench.sh MODEL.gguf PROMPT_TOKENS GEN_LENGTH STEPS BLOCK_LENGTH
# Runs .llama/llama-diffusion-cli (bench/llama_cpp_vulkan.sh builds it; LLAMA_DIFFUSION_CLI
# picks another) with every layer on the GPU, LLaDA's block schedule and confidence order. On
# a CPU adapter (lavapipe) set GGML_VK_VISIBLE_DEVICES=0: llama.cpp skips CPU devices.
#
# The prompt is PROMPT_TOKENS letters through the model's chat template (llama.cpp always
# applies one). With the files of `write_full_size --tokenizer` (a byte-level tokenizer and a
# template that adds nothing) that is exactly PROMPT_TOKENS tokens; other models' tokenizers
# and templates change the count, and the block schedule below then fails or shifts.
# llama.cpp's loop differs from LLaDA's reference in two ways that shape the numbers: it has
# no cache (every step is a full pass over prompt + answer), and it runs (PROMPT + GEN) / BLOCK
# blocks from the prompt's end, so STEPS must be a multiple of that count and the blocks past
# the answer's end take their share of steps with nothing to unmask. "ms_per_step" (one
# full pass, on llama.cpp's own clock: the denoising loop alone) is the figure to hold beside
# ours.
set -euo pipefail
[ $# -ge 5 ] || { sed -n 2,3p "$0" >&2; exit 2; }
model="$1" n_input="$2" gen="$3" steps="$4" block="$5"
cli="${LLAMA_DIFFUSION_CLI:-$(dirname "$0")/../.llama/llama-diffusion-cli}"
[ -x "$cli" ] || { echo "$cli: not built (bench/llama_cpp_vulkan.sh)" >&2; exit 1; }
prompt="$(head -c "$n_input" /dev/zero | tr '\0' a)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
total=$((n_input + gen))
if [ $((total % block)) != 0 ] || [ $((steps % (total / block))) != 0 ]; then
  echo "prompt $n_input + answer $gen = $total tokens: llama.cpp needs that a multiple of the block ($block) and the steps ($steps) a multiple of its $((total / block)) blocks" >&2
  exit 2
fi
if ! "$cli" -m "$model" -p "$prompt" -ngl 999 -c "$total" -b "$total" -ub "$total" --diffusion-steps "$steps" \
  --diffusion-block-length "$block" --diffusion-algorithm 4 --temp 0 --top-k 1 --seed 1 >"$log" 2>&1; then
  tail -20 "$log" >&2
  exit 1
fi
grep -q "total time:" "$log" || { tail -20 "$log" >&2; echo "no timing line in llama.cpp's output" >&2; exit 1; }
device="$("$cli" --list-devices 2>/dev/null | sed -n 's/^ *Vulkan0: //p' | head -1)"
version="$("$cli" --version 2>&1 | sed -n 's/^version: //p' | head -1)"
sed -n 's/.*total time: \([0-9.]*\)ms, time per step: \([0-9.]*\)ms, sampling time per step: \([0-9.]*\)ms.*/\1 \2 \3/p' "$log" |
  awk -v device="${device:-CPU}" -v version="$version" -v model="$model" -v p="$n_input" -v gen="$gen" -v steps="$steps" -v block="$block" '
    { printf "{\"engine\":\"llama.cpp llama-diffusion-cli (Vulkan)\",\"version\":\"%s\",\"device\":\"%s\",\"model\":\"%s\",\"prompt_length\":%d,\"gen_length\":%d,\"steps\":%d,\"block_length\":%d,\"cache\":\"none\",\"ms_per_step\":%.3f,\"sampling_ms_per_step\":%.3f,\"total_ms\":%.1f,\"tokens_per_s\":%.2f}\n",
        version, device, model, p, gen, steps, block, $2, $3, $1, gen / ($1 / 1000) }'
