#!/usr/bin/env bash
# Meta-train a black-box proposer on PRIOR=gp (the paper's GP prior, the default) or
# PRIOR=search-space (learnt.blackbox.prior) with LOSS=ei (expected improvement under the GP
# covariance, the default; on the search-space prior only the unwarped GP layer's, which the
# proposer learns to exploit: validation gets worse) or LOSS=oi (observed improvement): ARCH=set (the attention proposer, width 32, 4 heads, 2 blocks) or
# ARCH=lstm (Chen et al.'s LSTM, hidden 64; FOURIER=F adds F random Fourier features to the set proposer), d = 1..9, horizon curriculum 10 -> 100, 1,500
# iterations (ITERATIONS), validation every 50 (VAL_EVERY), meta-lr META_LR (set 0.002, LSTM 0.005). Resumable chunks (1 thread): run again to resume.
#   ARCH=set LOSS=ei tools/metatrain_bbo.sh [OUT] [extra learnt args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${ARCH:-set}
LOSS=${LOSS:-ei}
PRIOR=${PRIOR:-gp}
FOURIER=${FOURIER:-0}
SUFFIX=""; [ "$ARCH" = set ] && [ "$FOURIER" != 0 ] && SUFFIX="-f$FOURIER"
[ -n "${META_LR:-}" ] && SUFFIX="$SUFFIX-lr$META_LR"
OUT=${1:-results/blackbox-gp/train-$ARCH-$LOSS-$PRIOR$SUFFIX}; shift || true
RESUME=(); [ -f "$OUT/meta-$LOSS/checkpoint.pt" ] && RESUME=(--resume)
if [ "$ARCH" = set ]; then
    EXTRA=(--set proposer.arch=set --set proposer.hidden=32 --set proposer.heads=4 --set proposer.fourier=$FOURIER
           --set train.meta_lr=${META_LR:-0.002})
elif [ "$ARCH" = lstm ]; then
    EXTRA=(--set proposer.arch=lstm --set train.meta_lr=${META_LR:-0.005})
else
    echo "ARCH=$ARCH; expected set or lstm" >&2; exit 2
fi
exec .venv/bin/learnt meta-train blackbox-gp --threads 1 --no-progress --out "$OUT" --set losses=$LOSS \
    --set train.prior.kind=$PRIOR --set train.iterations=${ITERATIONS:-1500} --set train.val_every=${VAL_EVERY:-50} \
    --set train.checkpoint_every=25 "${EXTRA[@]}" "${RESUME[@]}" "$@"
