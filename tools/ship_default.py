"""Write the shipped default learned optimizer (src/learnt/pretrained/adam-controller.pt).

    python tools/ship_default.py                      # the hand-designed initialisation
    python tools/ship_default.py RUN/meta/selected.pt # the controller meta-training selected (with its metadata)
"""
from __future__ import annotations

import sys

from learnt.experiments.lopt_train import ControllerConfig, build_controller
from learnt.learned import load_rule, save_rule

OUT = "src/learnt/pretrained/adam-controller.pt"

if len(sys.argv) > 1:
    from learnt.io import safe_torch_load
    rule = load_rule(sys.argv[1], expected_kind="adam-controller")
    meta = dict(safe_torch_load(sys.argv[1])["meta"])
else:
    rule = build_controller(ControllerConfig())
    meta = {"meta_trained_iterations": 0, "selection": "none",
            "trained_on": "not meta-trained: the hand-designed initialisation (Adam directions, base lr 1e-2, "
                          "per-tensor step multipliers grown while the running gradient/momentum cosine is above "
                          "0.1 and shrunk while it is below -0.3, flat schedule then a cosine decay over the last "
                          "80% of a known horizon of 1,000 steps or more, moving to the last 30% for runs of 250 steps "
                          "or fewer; both ends chosen by tools/screen_default.py on the meta-training distribution, "
                          "results/lopt-suite/design/)"}
save_rule(rule, OUT, meta)
print("wrote", OUT, meta)
