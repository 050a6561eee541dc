"""``nas-digits``: Zoph & Le (2017) controller search vs random search on 8x8 digits.

``searches`` independent searches per method, each training ``batches * batch_size``
children with the same child budget on the train split and scoring them on the validation
split; the controller learns by REINFORCE, random search samples uniformly with the same
depth curriculum. Per search the ``retrain.top_k`` best distinct architectures are retrained
from scratch with ``retrain.seeds`` seeds, the one with the best retrained validation
accuracy is selected and its test accuracy reported. Rows: best validation accuracy found,
mean validation accuracy of the last quarter of sampled children (did the policy improve?),
retrained validation and test accuracy of the selected architecture; mean ± 95% CI over
searches, with a one-sided Mann-Whitney p-value for "controller > random".
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learnt.errors import ConfigError
from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.results import stat_row
from learnt.meta.stats import mann_whitney_less, mean_ci95
from learnt.nas import (Architecture, ArchitectureSearch, ChildConfig, SearchConfig, SearchSpace, decode_tokens,
                        make_backend, render_architecture, retrain, select, top_distinct)
from learnt.seeding import derive_seed

log = logging.getLogger(__name__)
METHODS = ("controller", "random")


@dataclass(frozen=True)
class ControllerConfig:
    hidden_size: int = 35
    num_layers: int = 2
    init_range: float = 0.1
    temperature: float = 1.0


@dataclass(frozen=True)
class RetrainConfig:
    top_k: int = 2          # candidates per search
    seeds: int = 3          # fresh trainings per candidate
    epochs: int = 6         # retraining budget (the search used child.epochs)

    def __post_init__(self) -> None:
        if min(self.top_k, self.seeds, self.epochs) < 1:
            raise ConfigError(f"retrain top_k={self.top_k}, seeds={self.seeds}, epochs={self.epochs}; expected >= 1")


@dataclass(frozen=True)
class NASDigitsConfig:
    space: SearchSpace = field(default_factory=SearchSpace)
    search: SearchConfig = field(default_factory=lambda: SearchConfig(batches=20, batch_size=8, min_layers=2,
                                                                      max_layers=5, curriculum_every=4, lr=0.01))
    child: ChildConfig = field(default_factory=lambda: ChildConfig(epochs=2, batch_size=32))
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    searches: int = 5
    dataset: str = "digits"     # digits | glyphs (57-way, 10 images per class: not saturated)
    backend: str = "serial"     # serial | local | ray
    workers: int = 2
    ray_address: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.searches < 1:
            raise ConfigError(f"searches={self.searches}; expected >= 1")
        if self.dataset not in ("digits", "glyphs"):
            raise ConfigError(f"dataset={self.dataset!r}; expected 'digits' or 'glyphs'")
        if self.backend not in ("serial", "local", "ray"):
            raise ConfigError(f"backend={self.backend!r}; expected 'serial', 'local' or 'ray'")


def config(budget: str) -> NASDigitsConfig:
    cfg = NASDigitsConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, searches=2,
                                  search=dataclasses.replace(cfg.search, batches=4, batch_size=4, curriculum_every=2,
                                                             max_layers=3),
                                  child=dataclasses.replace(cfg.child, epochs=1),
                                  retrain=RetrainConfig(top_k=1, seeds=2, epochs=2))
    return cfg


def _child(cfg: NASDigitsConfig, epochs: int | None = None) -> ChildConfig:
    c = dataclasses.replace(cfg.child, device=cfg.device)
    return c if epochs is None else dataclasses.replace(c, epochs=epochs)


def search_seed(seed: int, i: int) -> int:
    """The seed of independent search ``i`` (shared by both methods: same child seeds)."""
    return derive_seed(seed, "train", i, 5017) % (2 ** 31)


def meta_train(cfg: NASDigitsConfig, ctx: RunContext) -> dict:
    """Run every search (resumable under ``OUT/searches/METHOD-i``); return their histories."""
    out: dict = {m: [] for m in METHODS}
    with make_backend(cfg.backend, cfg.workers, address=cfg.ray_address or None) as backend:
        for i in range(cfg.searches):
            for method in METHODS:
                s = ArchitectureSearch(cfg.space, method, cfg.search, _child(cfg), seed=search_seed(ctx.seed, i),
                                       backend=backend, workdir=ctx.out / "searches" / f"{method}-{i}",
                                       controller=dataclasses.asdict(cfg.controller), progress=ctx.progress,
                                       device=cfg.device, resume=ctx.resume, dataset=cfg.dataset)
                s.run()
                out[method].append({"history": s.history, "batch_log": s.batch_log})
                log.info("%s search %d: best val %.4f", method, i, max(h["val_acc"] for h in s.history))
    return out


def _p_greater(a, b) -> float:
    """One-sided Mann-Whitney p for "``a`` tends to be larger than ``b``"."""
    return mann_whitney_less(b, a)


def evaluate(cfg: NASDigitsConfig, ctx: RunContext, searches: dict):
    rows, per = [], {}
    selected: dict[str, list[dict]] = {m: [] for m in METHODS}
    with make_backend(cfg.backend, cfg.workers, address=cfg.ray_address or None) as backend:
        for method in METHODS:
            best_val, late, re_val, re_test = [], [], [], []
            for i, s in enumerate(searches[method]):
                hist = s["history"]
                best_val.append(max(h["val_acc"] for h in hist))
                n_late = max(1, len(hist) // 4)
                late.append(float(np.mean([h["val_acc"] for h in hist[-n_late:]])))
                cands = top_distinct(hist, cfg.retrain.top_k)
                rts = retrain([decode_tokens(cfg.space, c["tokens"]) for c in cands], _child(cfg, cfg.retrain.epochs),
                              cfg.retrain.seeds, search_seed(ctx.seed, i), backend=backend, dataset=cfg.dataset)
                best = select(rts)
                re_val.append(best.mean_val)
                re_test.append(best.mean_test)
                chosen = cands[rts.index(best)]
                selected[method].append({
                    "search": i, "child": chosen["child"], "search_val_acc": chosen["val_acc"],
                    "retrained_val": list(best.val), "retrained_test": list(best.test), "params": best.params,
                    "architecture": best.arch.to_dict(), "description": best.arch.describe(),
                    "failed_children": sum(not h["ok"] for h in hist)})
            per[method] = {"best_val_acc": best_val, "late_val_acc": late, "retrained_val_acc": re_val,
                           "test_acc": re_test,
                           "child_seconds": [sum(h["seconds"] for h in s["history"]) for s in searches[method]],
                           "failed_children": [sum(not h["ok"] for h in s["history"]) for s in searches[method]],
                           "mean_params": [float(np.mean([h["params"] for h in s["history"]]))
                                           for s in searches[method]]}
    for metric in ("best_val_acc", "late_val_acc", "retrained_val_acc", "test_acc"):
        for method in METHODS:
            extra = {}
            if method == "controller":
                extra["p_greater_vs"] = {"random": _p_greater(per["controller"][metric], per["random"][metric])}
            rows.append(stat_row(method, cfg.dataset, metric, per[method][metric], **extra))
    curves = {m: _reward_curve(searches[m], cfg.search.batch_size) for m in METHODS}
    best_so_far = {m: _best_curve(searches[m], cfg.search.batch_size) for m in METHODS}
    overall = max(((m, s) for m in METHODS for s in selected[m]), key=lambda t: np.mean(t[1]["retrained_val"]))
    verdict = _verdict(per)
    extra = {"per_search": per, "selected": selected, "best_so_far": best_so_far, "verdict": verdict,
             "best_architecture": {"method": overall[0], **overall[1]},
             "val_acc_by_child": {m: [[h["val_acc"] for h in s["history"]] for s in searches[m]] for m in METHODS},
             "batch_logs": {m: [s["batch_log"] for s in searches[m]] for m in METHODS}}
    log.info("%s", verdict)
    return rows, curves, extra


def _reward_curve(searches: list[dict], m: int) -> dict:
    """Per controller batch: mean validation accuracy of its children, mean ± CI over searches."""
    acc = np.array([[h["val_acc"] for h in s["history"]] for s in searches])       # (searches, children)
    per_batch = acc.reshape(len(searches), -1, m).mean(2)                            # (searches, batches)
    mc = [mean_ci95(per_batch[:, b]) for b in range(per_batch.shape[1])]
    return {"step": [m * (b + 1) for b in range(per_batch.shape[1])], "mean": [x[0] for x in mc],
            "ci95": [x[1] for x in mc]}


def _best_curve(searches: list[dict], m: int) -> dict:
    acc = np.array([[h["val_acc"] for h in s["history"]] for s in searches])
    best = np.maximum.accumulate(acc, axis=1)[:, m - 1::m]
    mc = [mean_ci95(best[:, b]) for b in range(best.shape[1])]
    return {"step": [m * (b + 1) for b in range(best.shape[1])], "mean": [x[0] for x in mc],
            "ci95": [x[1] for x in mc]}


def _verdict(per: dict) -> str:
    parts = []
    for metric, label in (("best_val_acc", "best validation accuracy found"), ("test_acc", "retrained test accuracy"),
                          ("late_val_acc", "mean validation accuracy of the last quarter of samples")):
        c, r = per["controller"][metric], per["random"][metric]
        (mc, cc, _), (mr, cr, _) = mean_ci95(c), mean_ci95(r)
        p = _p_greater(c, r)
        if p < 0.05:
            word = "controller beats random search"
        elif mc > mr:
            word = "controller ahead of random search but not significantly"
        else:
            word = "controller does not beat random search"
        parts.append(f"{label}: controller {mc:.4f} ± {cc:.4f} vs random {mr:.4f} ± {cr:.4f} "
                     f"(one-sided Mann-Whitney p = {p:.3g}): {word}")
    return "; ".join(parts)


def plot(results: dict, out: Path) -> list[Path]:
    from learnt.plotting import plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for name, accs in results.get("val_acc_by_child", {}).items():
        for k, acc in enumerate(accs):
            axes[0].scatter(np.arange(1, len(acc) + 1), acc, s=3, alpha=0.25, marker="o" if name == "controller" else "x",
                            color="tab:blue" if name == "controller" else "tab:orange", lw=0.6,
                            label=f"{name} (each child)" if k == 0 else None)
    for ax, (curves, title) in zip(axes, ((results["curves"], "validation accuracy of sampled children"),
                                          (results["best_so_far"], "best validation accuracy so far"))):
        for name, c in curves.items():
            x = np.asarray(c["step"])
            mean = np.asarray(c["mean"], float)
            ci = np.nan_to_num(np.asarray(c["ci95"], float), nan=0.0, posinf=0.0)
            (line,) = ax.plot(x, mean, "-" if name == "controller" else "--", lw=2 if name == "controller" else 1.5,
                              label=name, color="tab:blue" if name == "controller" else "tab:orange")
            ax.fill_between(x, mean - ci, mean + ci, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xlabel("sampled architectures")
        ax.set_ylabel("validation accuracy (reward)")
        ax.set_title(title + " (lines: batch mean ± 95% CI over searches)", fontsize=9)
        ax.set_ylim(0, 1.0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p1 = out / "reward_vs_architectures.png"
    fig.savefig(p1)
    plt.close(fig)
    best = results["best_architecture"]
    arch = Architecture.from_dict(best["architecture"])
    p2 = render_architecture(arch, out / "best_architecture.png",
                             title=f"best ({best['method']} search {best['search']}): retrained val "
                                   f"{np.mean(best['retrained_val']):.3f}, test {np.mean(best['retrained_test']):.3f}")
    return [p1, p2]


NAS_DIGITS = Experiment(
    name="nas-digits",
    description="NAS with an RL controller vs random search on 8x8 digits (Zoph & Le 2017)",
    config=config, meta_train=meta_train, evaluate=evaluate, plot=plot,
)


def config_glyphs(budget: str) -> NASDigitsConfig:
    """nas-digits' search on 57-way glyphs: 10 training images per class, so architectures
    differ; children train for more epochs (the training set is half the size of digits')."""
    cfg = config(budget)
    child = dataclasses.replace(cfg.child, epochs=10 if budget != "quick" else 2)
    retrain_cfg = dataclasses.replace(cfg.retrain, epochs=20 if budget != "quick" else 2)
    return dataclasses.replace(cfg, dataset="glyphs", child=child, retrain=retrain_cfg)


NAS_GLYPHS = Experiment(
    name="nas-glyphs",
    description="NAS with an RL controller vs random search on 57-way rendered glyphs, 10 images per class (Zoph & Le 2017)",
    config=config_glyphs, meta_train=meta_train, evaluate=evaluate, plot=plot,
)
