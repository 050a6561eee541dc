#!/usr/bin/env bash
# Meta-train the default learned optimizer in resumable chunks (1 thread; log in OUT/meta/log.jsonl).
# Run it again after an interruption or at the next session: it resumes from OUT/meta/checkpoint.pt.
#   tools/metatrain_default.sh [OUT] [extra learnt args...]
# The run committed in results/lopt-suite/train started from the earlier initialisation
# (decay_start 0.7, before the horizon-dependent decay start); resume it with
#   tools/metatrain_default.sh results/lopt-suite/train --set controller.decay_start=0.7
# New meta-training from the current initialisation starts in a new OUT folder.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/lopt-suite/train}; shift || true
RESUME=(); [ -f "$OUT/meta/checkpoint.pt" ] && RESUME=(--resume)
exec .venv/bin/learnt meta-train lopt-suite --threads 1 --no-progress --out "$OUT" "${RESUME[@]}" "$@"
