#!/usr/bin/env bash
# Meta-train the hierarchical RNN on the real-network family (truncated BPTT, lr clipped at 0.1),
# in resumable chunks (1 thread); run again to resume from OUT/meta/checkpoint.pt.
#   tools/metatrain_hrnn_nets.sh [OUT] [extra learnt args...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/lopt-suite/train-hrnn}; shift || true
RESUME=(); [ -f "$OUT/meta/checkpoint.pt" ] && RESUME=(--resume)
exec .venv/bin/learnt meta-train lopt-suite --threads 1 --no-progress --out "$OUT" --set rule=hrnn \
    --set train.estimator=bptt --set train.truncation=25 --set train.meta_lr=0.001 \
    --set family.heldout_objective=false --set train.iterations=1000 "${RESUME[@]}" "$@"
