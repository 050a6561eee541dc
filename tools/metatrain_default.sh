#!/usr/bin/env bash
# Meta-train the default learned optimizer in resumable chunks (1 thread; log in OUT/meta/log.jsonl).
# Run it again after an interruption or at the next session: it resumes from OUT/meta/checkpoint.pt.
#   tools/metatrain_default.sh [OUT] [extra learnt args...]
# The run committed in results/lopt-suite/train started from the earlier initialisation
# (decay_start 0.7, before the rule's config had the horizon-dependent decay start), so this
# code refuses to resume it (the checkpoint names the differing rule config); its best state
# still loads with learnt.learned.load_rule. New meta-training starts in a new OUT folder.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/lopt-suite/train}; shift || true
RESUME=(); [ -f "$OUT/meta/checkpoint.pt" ] && RESUME=(--resume)
exec .venv/bin/learnt meta-train lopt-suite --threads 1 --no-progress --out "$OUT" "${RESUME[@]}" "$@"
