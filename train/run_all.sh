#!/usr/bin/env bash
# Regenerates the demo model from nothing: data -> tokenizer -> train -> export -> python eval
# -> models/build.sh (GGUF conversions and the stored CPU-twin generation).
# Needs: python3 with torch, tokenizers, safetensors, numpy (pip install -r train/requirements.txt)
# and apt-get (for `apt-get download wordnet-base`). Everything else is offline.
#   SEED   (default 1234)  seed of the data generator and of training
#   SCHEDULE (default shipped) "shipped" replays the shipped model's exact schedule (below);
#            "simple" is one cosine run of STEPS steps (default 3600) with the phase-1 mix
#   CONFIG (default small) model size (small = the shipped one; big = for a CUDA GPU)
#   DEVICE (default cpu)   cpu or cuda
#   OUT    (default models/demo)
# Interrupted? Run it again: data and tokenizer are rebuilt identically and training resumes
# from train/work/ckpt.pt. Delete train/work/ to start over.
set -euo pipefail
cd "$(dirname "$0")"
SEED=${SEED:-1234}
SCHEDULE=${SCHEDULE:-shipped}
STEPS=${STEPS:-3600}
CONFIG=${CONFIG:-small}
DEVICE=${DEVICE:-cpu}
OUT=${OUT:-../models/demo}
mkdir -p work
echo "== data (seed $SEED)"
python3 make_data.py --seed "$SEED"
echo "== tokenizer"
python3 train_tokenizer.py
echo "== train ($CONFIG, schedule $SCHEDULE, seed $SEED, $DEVICE); log in train/work/train.log"
T="python3 train.py --config $CONFIG --seed $SEED --device $DEVICE --batch 32"
if [ "$SCHEDULE" = shipped ]; then
  # The shipped model's history, replayed exactly (each call resumes from work/ckpt.pt):
  # phase 1 (mixed data, canvas 80..128): planned 2800 steps, cut to 1800 at step 300 when the
  # shared CPU ran slower than measured, extended to 2400 at step 1200 when it freed up;
  # The shipped files are the step-2400 export. A phase 2 (task-heavy mix, canvas 80..112,
  # warm restart towards step 3600) was tried after it but is NOT shipped; to continue it:
  #   $T --steps 3600 --lengths 80,96,112 --mix '{"prose": 0.08, "facts": 0.08,
  #      "arithmetic": 0.45, "reversal": 0.14, "infill": 0.15, "wordchat": 0.10}'
  $T --steps 2800 --stop-at 300 2>&1 | tee -a work/train.log
  $T --steps 1800 --stop-at 1200 2>&1 | tee -a work/train.log
  $T --steps 2400 2>&1 | tee -a work/train.log
else
  $T --steps "$STEPS" 2>&1 | tee -a work/train.log
fi
echo "== export to $OUT"
python3 export.py --out "$OUT"
echo "== python reference eval"
python3 reference_sampler.py --model "$OUT" --steps 48 --gen-length 48 --block-length 16 \
  --json work/eval_python.json | tee work/eval_python.txt
echo "== Rust side: F16 folder, GGUF F16/Q8_0/Q4_0 (tokenizer embedded), expected generation"
../models/build.sh
