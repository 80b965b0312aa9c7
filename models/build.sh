#!/usr/bin/env bash
# Turns the exported demo model (models/demo: config.json, model.safetensors, tokenizer.json,
# eval/) into what the repo ships and the tests check:
#   models/demo/model.safetensors   F16 (rewritten in place)
#   models/demo-q4_0.gguf           the page's and the CLI's default model (tokenizer embedded)
#   models/demo-f16.gguf, models/demo-q8_0.gguf   for eval comparisons (not committed)
#   models/demo/expected_generation.json   a fixed-seed generation by the CPU twin
# Run after train/run_all.sh (or as its last step). Needs only cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
bin=./target/release/unmask
$bin convert models/demo --out models/demo --quant f16
for q in q4_0 q8_0 f16; do $bin convert models/demo --out models/demo-$q.gguf --quant $q; done
$bin generate --cpu --model models/demo-q4_0.gguf --chat \
  --prompt "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?" \
  --gen-length 64 --steps 32 --block-length 32 --seed 7 --json > models/demo/expected_generation.json
echo "shipped files:"; ls -la models/demo models/demo-q4_0.gguf
