#!/usr/bin/env bash
# Trains the demo model on a lent CUDA machine (the project's `device` tool), where only
# PyTorch is installed and nothing can be downloaded: the data goes there pre-tokenized.
#
# Here (once):   train/run_all.sh's data and tokenizer steps, then
#                python3 train/train.py --data-cache train/work/data.pt --prepare-only
# There:         run(command="train/gpu.sh", carry=["train/work/data.pt"], timeout_s=590)
#                -> $OUT/ckpt.pt and $OUT/train.log come back (a rerun resumes from a
#                   carried checkpoint: carry it as train/work/gpu/ckpt.pt)
# Here again:    python3 train/export.py --ckpt <files_at>/ckpt.pt --out models/demo
#                models/build.sh, then the tests, `unmask eval` and the model card.
# Same architecture and size as the CPU run (it must stay small enough to ship), many more
# tokens: batch 256, STEPS steps (a time limit checkpoints and stops before the call's limit).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-12000}
BATCH=${BATCH:-256}
OUT=${OUT:-train/work/gpu}
mkdir -p "$OUT"
[ -f train/work/gpu/ckpt.pt ] && [ ! -f "$OUT/ckpt.pt" ] && cp train/work/gpu/ckpt.pt "$OUT/ckpt.pt"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 train/train.py --config small --device cuda --batch "$BATCH" --steps "$STEPS" \
  --data-cache train/work/data.pt --ckpt "$OUT/ckpt.pt" --lr 2e-3 --warmup 500 --threads 8 \
  --log-every 200 --ckpt-every 1000 --time-limit 540 --tight 56 \
  --lengths 48,48,48,48,64,64,64,64,64,64,80,80,80,80,80,80,96,96,96,96,112,112,128,128,160,288 \
  --mix '{"arithmetic": 0.24, "drill": 0.14, "copy": 0.12, "reversal": 0.14, "facts": 0.10, "infill": 0.10, "wordchat": 0.08, "prose": 0.08}' \
  2>&1 | tee -a "$OUT/train.log"
