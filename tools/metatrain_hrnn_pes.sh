#!/usr/bin/env bash
# Meta-train the hierarchical RNN on the real-network family with PES and the held-out-batch
# objective (the default's estimator and objective; lr_bound 100x on), in resumable chunks
# (1 thread); run again to resume from OUT/meta/checkpoint.pt.
#   tools/metatrain_hrnn_pes.sh [OUT] [extra learnt args...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/lopt-suite/train-hrnn-pes}; shift || true
RESUME=(); [ -f "$OUT/meta/checkpoint.pt" ] && RESUME=(--resume)
exec .venv/bin/learnt meta-train lopt-suite --threads 1 --no-progress --out "$OUT" --set rule=hrnn \
    --set train.val_every=25 --set train.iterations=1000 "${RESUME[@]}" "$@"
