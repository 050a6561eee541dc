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


NOTES = {
    "l2l-quadratic": "The LSTM beats every tuned baseline on the paired test (p < 0.01 each); the mean is "
                     "dominated by a few ill-conditioned quadratics (hence the wide CIs), the median shows the "
                     "typical function.",
    "l2l-mlp": "Training loss (the paper's metric, Fig. 4) is far lower than every tuned baseline at 100 steps "
               "and, beyond its 100-step training horizon, at 200 steps. On held-out digits the learned "
               "optimizer overfits: its held-out accuracy is below tuned NAG and Adam. It was meta-trained "
               "to minimise training loss, and it does exactly that.",
    "l2l-generalization": "The optimizer trained on the 20-unit sigmoid MLP, unchanged. It wins on 40 units and, "
                          "paired, on 2 layers (though one bad run puts its mean above Adam's), and fails on "
                          "ReLU, as the paper reports (Fig. 5).",
    "l2l-conv": "The paper's two-LSTM variant (one LSTM for conv/batch-norm parameters, one for fully "
                "connected ones) on a 3-layer conv net with batch norm, scaled to 8x8 digits. As on the MLP, "
                "it reaches a much lower training loss than every tuned baseline and a lower held-out accuracy.",
    "hrnn-ensemble": "Scale-free progress log10(f_T / f_0) on held-out problems of the 13 training families "
                     "(with the paper's transformations), 200 steps. SGD diverges on some test problem even at "
                     "its validation-tuned rate. The LSTM row is the shipped l2l-mlp optimizer (trained on the "
                     "digits MLP, not on the ensemble).",
    "hrnn-generalization": "Problems the HRNN never saw, for 2400 steps (10x its mean meta-training unroll), "
                           "with the user-facing initial learning rate 1e-3. **The HRNN loses here**: it is "
                           "competitive only on the sigmoid MLP and blows up on ReLU, 2 layers and the conv net, "
                           "far behind tuned Adam. The lr-robustness sweep shows why: 1e-3 is at the edge of its "
                           "stable range on these problems, and our meta-training (1000 runs of ~240 steps, "
                           "first-order, on a CPU) is far smaller than the paper's.",
    "hrnn-lr-robustness": "Final loss vs the initial learning rate (HRNN) or the learning rate (Adam, RMSprop) "
                          "on the digits sigmoid MLP. The HRNN is excellent from 1e-5 to 3e-4, where Adam and "
                          "RMSprop barely move, but breaks from 3e-3 up: its worst-to-best ratio over the "
                          "whole span is larger than Adam's, so the paper's claim holds only on the low side.",
}


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    ci = r.get("ci95")
    ci_s = f" ± {ci:.2g}" if isinstance(ci, (int, float)) and ci == ci else ""
    return f"{r['mean']:.3g}{ci_s}"


def pivot_table(rows: list[dict], metric_prefixes: tuple[str, ...], best_low: bool = True) -> str:
    """| setting | method | metric1 | metric2 | ... with mean ± CI cells; the best mean per setting
    and metric in bold (lowest when ``best_low``)."""
    metrics = []
    for r in rows:
        if r["metric"].startswith(metric_prefixes) and r["metric"] not in metrics:
            metrics.append(r["metric"])
    # one time column whatever the number of trials it was measured at
    timing = [m for m in metrics if m.startswith("suggest_ms@")]
    cols = [m for m in metrics if not m.startswith("suggest_ms@")] + (["suggest_ms"] if timing else [])
    index: dict[tuple, dict] = {}
    for r in rows:
        key = "suggest_ms" if r["metric"].startswith("suggest_ms@") else r["metric"]
        if key in cols:
            index[(r["setting"], r["method"], key)] = r
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = ["setting", "method"] + [("ms / suggestion" if c == "suggest_ms" else c) for c in cols]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in settings:
        best = {}
        for c in cols:
            vals = [index[(s, m, c)]["mean"] for m in methods if (s, m, c) in index]
            if vals and c != "suggest_ms":
                best[c] = min(vals) if best_low else max(vals)
        for m in methods:
            if not any((s, m, c) in index for c in cols):
                continue
            cells = []
            for c in cols:
                r = index.get((s, m, c))
                txt = _cell(r)
                if r is not None and c in best and r["mean"] == best[c]:
                    txt = f"**{txt}**"
                cells.append(txt)
            out.append("| " + " | ".join([s, m] + cells) + " |")
    return "\n".join(out)


def method_columns(rows: list[dict], metric: str, best_low: bool = False, pct: bool = False) -> str:
    """| setting | method A | method B | ... for one metric (best per setting in bold)."""
    rows = [r for r in rows if r["metric"] == metric]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    index = {(r["setting"], r["method"]): r for r in rows}
    out = ["| setting | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for s in settings:
        vals = [index[(s, m)]["mean"] for m in methods if (s, m) in index]
        best = (min(vals) if best_low else max(vals)) if vals else None
        cells = []
        for m in methods:
            r = index.get((s, m))
            if r is None:
                cells.append("")
                continue
            scale = 100.0 if pct else 1.0
            ci = r.get("ci95")
            txt = (f"{scale * r['mean']:.1f}" if pct else f"{r['mean']:.3g}") + (
                (f" ± {scale * ci:.1f}" if pct else f" ± {ci:.2g}") if isinstance(ci, (int, float)) and ci == ci else "")
            cells.append(f"**{txt}**" if r["mean"] == best else txt)
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(out)


COLUMNS = {"imitation-particle": ("success", False, True), "imitation-blocks": ("success", False, True)}

PIVOT = {"blackbox-gp": (("regret@", "suggest_ms@"), True), "blackbox-benchmarks": (("regret@", "suggest_ms@"), True),
         "blackbox-hpo": (("regret@", "suggest_ms@"), True)}


def section(name: str) -> str:
    path = ROOT / "results" / name / "results.json"
    res = json.loads(path.read_text())
    env = res["environment"]
    rows = [r for r in res["rows"] if r["metric"] not in ("heldout_loss",)]
    if name in PIVOT:
        table, rows = pivot_table(rows, *PIVOT[name]).splitlines(), None
    elif name in COLUMNS:
        table, rows = method_columns(rows, *COLUMNS[name]).splitlines(), None
    if name == "hrnn-lr-robustness":
        ratio = [r for r in rows if r["metric"] == "worst_to_best_ratio"]
        table = ["| method | worst / best final loss | best (at lr) | worst (at lr) | lr span |", "|---|---|---|---|---|"]
        table += [f"| {r['method']} | {r['mean']:.3g} | {r['best']:.3g} ({r['best_lr']:.2g}) | "
                  f"{r['worst']:.3g} ({r['worst_lr']:.2g}) | {r['lr_span'][0]:g} to {r['lr_span'][1]:g} |" for r in ratio]
        rows = None
    text = [f"### `{name}`", "",
            f"`learnt reproduce {name} --seed {res['seed']} --threads {env['threads']}` ({res['budget']} budget, {res['wall_seconds'] / 60:.0f} min on "
            f"{env['threads']} CPU thread(s), torch {env['torch']}); full rows in "
            f"[`results/{name}/results.json`](results/{name}/results.json).", "",
            markdown_table(rows) if rows is not None else "\n".join(table), ""]
    if name in NOTES:
        text[2:2] = [NOTES[name], ""]
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
