"""Turn on the relative trust region of the shipped HRNN (src/learnt/pretrained/hrnn.pt).

    python tools/ship_hrnn_guard.py 0.03     # rho chosen by tools/screen_hrnn_guard.py

The weights and their metadata stay as they were (hrnn-ensemble's meta-training); only the
config gains ``max_rel_step`` and the metadata says so.
"""
from __future__ import annotations

import sys

from learnt.io import safe_torch_load
from learnt.learned import load_rule, save_rule

OUT = "src/learnt/pretrained/hrnn.pt"

if len(sys.argv) != 2:
    raise SystemExit(__doc__)
rho = float(sys.argv[1])
rule = load_rule(OUT, expected_kind="hrnn")
meta = dict(safe_torch_load(OUT)["meta"])
rule.max_rel_step = None if rho <= 0 else rho
meta["trust_region"] = (f"max_rel_step={rule.max_rel_step} set after meta-training (weights unchanged), chosen on "
                        "the meta-training family by tools/screen_hrnn_guard.py "
                        "(results/lopt-suite/design/screen_hrnn_guard.json)")
save_rule(rule, OUT, meta)
print("wrote", OUT, rule.config())
