#!/usr/bin/env bash
# Meta-train a black-box proposer on the search-space prior (learnt.blackbox.prior) with the
# observed-improvement loss: ARCH=set (the attention proposer, width 32, 4 heads, 2 blocks) or
# ARCH=lstm (Chen et al.'s LSTM, hidden 64), d = 1..9, horizon curriculum 10 -> 100, 1,500
# iterations, validation every 50. Resumable chunks (1 thread): run again to resume.
#   ARCH=set tools/metatrain_bbo.sh [OUT] [extra learnt args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${ARCH:-set}
OUT=${1:-results/blackbox-gp/train-$ARCH-search-space}; shift || true
RESUME=(); [ -f "$OUT/meta-oi/checkpoint.pt" ] && RESUME=(--resume)
if [ "$ARCH" = set ]; then
    EXTRA=(--set proposer.arch=set --set proposer.hidden=32 --set proposer.heads=4 --set train.meta_lr=0.002)
elif [ "$ARCH" = lstm ]; then
    EXTRA=(--set proposer.arch=lstm --set train.meta_lr=0.005)
else
    echo "ARCH=$ARCH; expected set or lstm" >&2; exit 2
fi
exec .venv/bin/learnt meta-train blackbox-gp --threads 1 --no-progress --out "$OUT" --set losses=oi \
    --set train.prior.kind=search-space --set train.iterations=1500 --set train.val_every=50 \
    --set train.checkpoint_every=25 "${EXTRA[@]}" "${RESUME[@]}" "$@"
