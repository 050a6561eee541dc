#!/usr/bin/env bash
# Meta-train the hierarchical RNN on the real-network family, starting from the shipped hrnn
# (trained on the paper's ensemble), with its relative trust region (max_rel_step 0.03) on while
# meta-training, lr clipped at 0.1 and every learned rate kept within 100x of its start.
# Truncated BPTT (25 steps, state carried across truncations) by default; ESTIMATOR=pes uses the
# default's PES with the held-out-batch objective. Resumable chunks (1 thread): run again to
# resume from OUT/meta/checkpoint.pt.
#   tools/metatrain_hrnn_nets.sh [OUT] [extra learnt args...]
set -euo pipefail
cd "$(dirname "$0")/.."
EST=${ESTIMATOR:-bptt}
OUT=${1:-results/lopt-suite/train-hrnn-warm-$EST}; shift || true
RESUME=(); [ -f "$OUT/meta/checkpoint.pt" ] && RESUME=(--resume)
if [ "$EST" = bptt ]; then
    EXTRA=(--set train.estimator=bptt --set train.truncation=25 --set train.meta_lr=0.001
           --set family.heldout_objective=false)
elif [ "$EST" = pes ]; then
    EXTRA=(--set train.meta_lr=0.001)
else
    echo "ESTIMATOR=$EST; expected bptt or pes" >&2; exit 2
fi
exec .venv/bin/learnt meta-train lopt-suite --threads 1 --no-progress --out "$OUT" --set rule=hrnn \
    --set hrnn.warm_start=hrnn "${EXTRA[@]}" --set train.val_every=25 --set train.iterations=1000 \
    "${RESUME[@]}" "$@"
