"""Paper-style plots (matplotlib, Agg backend, PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def loss_curves(curves: dict[str, dict], path: str | Path, *, title: str, learned: tuple[str, ...] = (),
                ylabel: str = "loss", logy: bool = True) -> Path:
    """Mean loss vs step with 95% CI bands; learned methods solid, baselines dashed."""
    return loss_panels({title: curves}, path, learned=learned, ylabel=ylabel, logy=logy)


def loss_panels(panels: dict[str, dict[str, dict]], path: str | Path, *, learned: tuple[str, ...] = (),
                ylabel: str = "loss", logy: bool = True) -> Path:
    """One loss-vs-step panel per entry of ``panels`` (title -> curves), side by side."""
    from learnt.plotting import plt

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(6 * n if n < 3 else 4.6 * n, 4.2), dpi=110, squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        _draw(ax, curves, title, learned, ylabel, logy)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw(ax, curves, title, learned, ylabel, logy) -> None:
    for name, c in curves.items():
        step = np.asarray(c["step"])
        mean = np.asarray(c["mean"], dtype=float)
        ci = np.nan_to_num(np.asarray(c["ci95"], dtype=float), nan=0.0, posinf=0.0)
        ok = np.isfinite(mean)
        style = "-" if name in learned else "--"
        lw = 2.2 if name in learned else 1.4
        (line,) = ax.plot(step[ok], mean[ok], style, lw=lw, label=name)
        lo = np.maximum(mean - ci, mean * 1e-3) if logy else mean - ci
        ax.fill_between(step[ok], lo[ok], (mean + ci)[ok], color=line.get_color(), alpha=0.15, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
