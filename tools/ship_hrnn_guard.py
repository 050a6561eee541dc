"""Turn on the relative trust region of the shipped HRNN (src/learnt/pretrained/hrnn.pt).

    python tools/ship_hrnn_guard.py 0.03         # rho chosen by tools/screen_hrnn_guard.py
    python tools/ship_hrnn_guard.py 0.03 100     # and lr_bound (each learned rate within 100x of its start)

The weights and their metadata stay as they were (hrnn-ensemble's meta-training); only the
config gains ``max_rel_step`` (and ``lr_bound``) and the metadata says so.
"""
from __future__ import annotations

import sys

from learnt.io import safe_torch_load
from learnt.learned import load_rule, save_rule

OUT = "src/learnt/pretrained/hrnn.pt"

if len(sys.argv) not in (2, 3):
    raise SystemExit(__doc__)
rho = float(sys.argv[1])
bound = float(sys.argv[2]) if len(sys.argv) == 3 else None
rule = load_rule(OUT, expected_kind="hrnn")
meta = dict(safe_torch_load(OUT)["meta"])
rule.max_rel_step = None if rho <= 0 else rho
meta["trust_region"] = (f"max_rel_step={rule.max_rel_step} set after meta-training (weights unchanged), chosen on "
                        "the meta-training family by tools/screen_hrnn_guard.py "
                        "(results/lopt-suite/design/screen_hrnn_guard.json)")
if bound is not None:
    rule.lr_bound = None if bound <= 0 else bound
    meta["lr_bound"] = (f"lr_bound={rule.lr_bound} set after meta-training (weights unchanged): each learned rate "
                        "stays within that factor of the initial rate; chosen on the meta-training family by "
                        "tools/screen_hrnn_guard.py --adam (results/lopt-suite/design/screen_hrnn_lr_bound.json)")
save_rule(rule, OUT, meta)
print("wrote", OUT, rule.config())
