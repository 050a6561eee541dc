"""The one results format of the design (docs/architecture.md): ``results.json`` with long-format rows."""
from __future__ import annotations

import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from learnt.io import atomic_json_dump
from learnt.meta.stats import finite_or_inf, mean_ci95


def environment(device: str) -> dict[str, Any]:
    """Versions and machine facts recorded with every result."""
    from learnt import __version__
    return {"learnt": __version__, "torch": torch.__version__.split("+")[0], "device": device,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "machine": platform.machine()}


def stat_row(method: str, setting: str, metric: str, values, **extra) -> dict[str, Any]:
    """A row with mean, 95% CI half-width, n and median of ``values``."""
    vals = finite_or_inf(np.asarray(values, np.float64).ravel())
    mean, ci, n = mean_ci95(vals)
    return {"method": method, "setting": setting, "metric": metric, "mean": mean, "ci95": ci, "n": n,
            "median": float(np.median(vals)), **extra}


def curve_summary(curves: np.ndarray, every: int = 1) -> dict[str, list]:
    """Per-step mean and CI of a (steps + 1, n) loss array, for ``results.json`` curves."""
    steps = list(range(0, curves.shape[0], every))
    if steps[-1] != curves.shape[0] - 1:
        steps.append(curves.shape[0] - 1)
    means, cis = [], []
    for t in steps:
        m, c, _ = mean_ci95(finite_or_inf(curves[t]))
        means.append(m)
        cis.append(c)
    return {"step": steps, "mean": means, "ci95": cis}


def write_results(out: str | os.PathLike, results: dict[str, Any]) -> Path:
    """Write ``OUT/results.json`` atomically and return its path."""
    path = Path(out) / "results.json"
    atomic_json_dump(_jsonable(results), path)
    return path


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _fmt(x) -> str:
    if x == "inf":
        return "diverged"
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "diverged"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of rows: setting, method, metric, mean ± ci95, n, extras."""
    lines = [f"{'setting':<14} {'method':<12} {'metric':<16} {'mean ± ci95':<24} {'n':>4}  notes"]
    for r in rows:
        notes = []
        if "lr" in r:
            notes.append(f"lr={r['lr']:.3g}")
        if "p_vs" in r:
            notes.append("p(this<other) " + " ".join(f"{k}={v:.2g}" for k, v in r["p_vs"].items()))
        ms = f"{_fmt(r['mean'])} ± {_fmt(r['ci95'])}"
        lines.append(f"{r['setting']:<14} {r['method']:<12} {r['metric']:<16} {ms:<24} {r['n']:>4}  {' '.join(notes)}")
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The same rows as a Markdown table (for the README)."""
    out = ["| setting | method | metric | mean ± 95% CI | median | n | tuned lr | one-sided p (this < other) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = ", ".join(f"{k}: {_fmt_p(v)}" for k, v in r.get("p_vs", {}).items())
        lr = f"{r['lr']:.3g}" if "lr" in r else ""
        out.append(f"| {r['setting']} | {r['method']} | {r['metric']} | {_fmt(r['mean'])} ± {_fmt(r['ci95'])} "
                   f"| {_fmt(r.get('median'))} | {r['n']} | {lr} | {p} |")
    return "\n".join(out)


def _fmt_p(p: float) -> str:
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"
