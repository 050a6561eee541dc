"""Write the best (validation-selected) proposer of a meta-training checkpoint as a model file,
e.g. to evaluate an unfinished run: ``learnt evaluate blackbox-gp --checkpoint DIR`` takes a
folder of ``meta-NAME/best.pt`` files.

    python tools/proposer_from_checkpoint.py results/blackbox-gp/train-set-ei-gp/meta-ei/checkpoint.pt \
        runs/cands/meta-set/best.pt
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from learnt.blackbox.proposer import proposer_classes
from learnt.learned import save_rule


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
    kind = ck.get("kind")
    classes = proposer_classes()
    if kind not in classes:
        raise SystemExit(f"{sys.argv[1]!r} holds a {kind!r} checkpoint; expected one of {sorted(classes)}")
    model = classes[kind](**ck["rule_config"])
    model.load_state_dict(ck["best_state"])
    # the trainer's unroll length is the curriculum's final horizon; the loss is in the run's
    # folder name (meta-<loss>, as learnt meta-train blackbox-gp writes it)
    meta = {"horizon": int(ck.get("config", {}).get("unroll_steps", 100)), "best_iteration": ck["best_iteration"],
            "best_val": ck["best_score"], "iterations": ck["iteration"]}
    folder = Path(sys.argv[1]).resolve().parent.name
    if folder.startswith("meta-"):
        meta["loss"] = folder[len("meta-"):]
    save_rule(model, sys.argv[2], meta)
    print(f"{sys.argv[2]}: {kind}, best iteration {ck['best_iteration']} (validation {ck['best_score']:.4f}) "
          f"of {ck['iteration']}")


if __name__ == "__main__":
    main()
