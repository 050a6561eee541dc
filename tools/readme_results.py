"""Regenerate the README's results section from results/*/results.json.

    python tools/readme_results.py        # rewrites the block between the RESULTS markers
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from learnt.experiments.results import markdown_table

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["l2l-quadratic", "l2l-mlp", "l2l-generalization", "l2l-conv",
         "hrnn-ensemble", "hrnn-generalization", "hrnn-lr-robustness"]
PLOTS = {"l2l-quadratic": "loss_vs_step.png", "l2l-mlp": "loss_vs_step.png", "l2l-generalization": "generalization.png",
         "l2l-conv": "loss_vs_step.png", "hrnn-ensemble": "progress_vs_step.png",
         "hrnn-generalization": "generalization.png", "hrnn-lr-robustness": "lr_robustness.png"}


def section(name: str) -> str:
    path = ROOT / "results" / name / "results.json"
    res = json.loads(path.read_text())
    env = res["environment"]
    rows = [r for r in res["rows"] if r["metric"] not in ("heldout_loss",)]
    text = [f"### `{name}`", "",
            f"`learnt reproduce {name} --seed {res['seed']} --threads {env['threads']}` ({res['budget']} budget, {res['wall_seconds'] / 60:.0f} min on "
            f"{env['threads']} CPU thread(s), torch {env['torch']}); full rows in "
            f"[`results/{name}/results.json`](results/{name}/results.json).", "",
            markdown_table(rows), ""]
    plot = ROOT / "results" / name / PLOTS[name]
    if plot.exists():
        text += [f"![{name}](results/{name}/{PLOTS[name]})", ""]
    return "\n".join(text)


def main() -> None:
    parts = [section(n) for n in ORDER if (ROOT / "results" / n / "results.json").exists()]
    readme = (ROOT / "README.md").read_text()
    block = "<!-- RESULTS START -->\n" + "\n".join(parts) + "<!-- RESULTS END -->"
    new = re.sub(r"<!-- RESULTS START -->.*<!-- RESULTS END -->", lambda m: block, readme, flags=re.S)
    (ROOT / "README.md").write_text(new)


if __name__ == "__main__":
    main()
