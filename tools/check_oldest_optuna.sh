#!/usr/bin/env bash
# LearnedSampler under the oldest Optuna that pyproject.toml allows (3.6.0) and the pinned one:
# the two runs must print identical lines. Needs the package registry (installs 3.6.0 into a
# temporary folder put in front of the venv's site-packages; Optuna's own deps are shared).
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d)
.venv/bin/pip install -q --target "$T" --no-deps optuna==3.6.0
old=$(PYTHONPATH="$T" .venv/bin/python tools/optuna_smoke.py)
new=$(.venv/bin/python tools/optuna_smoke.py)
echo "$old"; echo "$new"
rm -rf "$T"
[ "$(echo "$old" | sed 1s/^3.6.0//)" = "$(echo "$new" | sed 1s/^[0-9.]*//)" ] && echo "same numbers under Optuna 3.6.0 and $(.venv/bin/python -c 'import optuna; print(optuna.__version__)')"
