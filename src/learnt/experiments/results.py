"""The one results format of the design (docs/architecture.md): ``results.json`` with long-format rows."""
from __future__ import annotations

import ast
import hashlib
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


PACKAGE_ROOT = Path(__file__).resolve().parents[1]     # src/learnt


def _module_file(name: str) -> Path | None:
    """The source file of ``learnt`` module ``name`` (a package's ``__init__.py``), if any."""
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE_ROOT / "__init__.py"
    rel = Path(*parts)
    for cand in (PACKAGE_ROOT / rel.with_suffix(".py"), PACKAGE_ROOT / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path, name: str) -> set[str]:
    """``learnt`` modules a source file imports (at any depth of the file; relative imports
    resolved; ``from m import x`` names ``m.x`` where ``x`` is a submodule, ``m`` otherwise)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "learnt"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "learnt":
                subs = {f"{mod}.{a.name}" for a in node.names if _module_file(f"{mod}.{a.name}") is not None}
                out |= subs
                if len(subs) < len(node.names):     # some name comes from mod itself
                    out.add(mod)
    return out


def code_fingerprint(modules: list[str]) -> dict[str, str]:
    """``{path relative to the package: code digest}`` of every ``learnt`` source file the
    given modules import, directly or through each other (followed statically, so modules a
    function imports lazily count too; a parent package's ``__init__`` counts only where it is
    imported by name). ``results.json`` records it as ``code``; ``tools/readme_results.py``
    recomputes it to say which committed results come from code that has changed since."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(path, name))
    return {str(p.relative_to(PACKAGE_ROOT)): _code_digest(p) for p in sorted(set(seen.values()))}


def _code_digest(path: Path) -> str:
    """Hash of a source file's syntax tree without docstrings: comments, docstrings and
    formatting do not change what a run computes, so they do not make a result stale."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


def stale_files(code: dict[str, str]) -> list[str]:
    """Files of a recorded :func:`code_fingerprint` whose code differs now (or that are gone)."""
    return [rel for rel, digest in code.items()
            if not (PACKAGE_ROOT / rel).is_file() or _code_digest(PACKAGE_ROOT / rel) != digest]


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
