"""``lopt-suite``: learned optimizers on held-out networks against tuned hand-designed ones.

Every problem is outside :class:`~learnt.tasks.net_family.NetFamily` (what makes each one
held-out is in :data:`PROBLEMS`: an architecture, depth, width, activation, loss, data
dimension, conditioning or horizon the family never draws). Digits problems are scored on the
digits *test* split, which meta-training never touches. Baselines: Adam and AdamW at
torch's default lr (1e-3), and Adam / AdamW / SGD-momentum with the learning rate tuned per
problem over a log grid on separate seeds (the tuning seeds are not the evaluation seeds).

Metrics per problem and method, over the evaluation seeds (paired: seed i of every method
starts from the same initialisation and sees the same minibatches): final training loss (whole
training set), test loss and accuracy, divergence (non-finite or above the initial loss), and
the speed-up to tuned Adam (steps tuned Adam needs to reach its own final smoothed training
loss, divided by the steps the method needs to reach it; the VeLO / Celo measure; a method that
never reaches it scores steps/T < 1). Over the suite: fraction of problems won against tuned
Adam and against Adam(1e-3) (mean final training loss at most theirs), interquartile mean of
log10(final loss / tuned Adam's), median speed-up, wall time per step relative to Adam.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.lopt_train import LoptTrainConfig, meta_train, train_config
from learnt.experiments.results import stat_row
from learnt.functional.rules import adam, adamw, momentum
from learnt.io import atomic_json_dump
from learnt.meta.stats import finite_or_inf, paired_wilcoxon_less
from learnt.meta.trainer import init_state
from learnt.meta.unroll import unroll
from learnt.seeding import make_generator
from learnt.tasks import netdata, nets
from learnt.tasks.net_task import NetTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    name: str
    build: Callable
    data: Callable          # generator -> NetData (held-out split: digits "test")
    batch_size: int
    steps: int
    held_out: str           # what the meta-training distribution never draws


def _digits(**kw):
    return lambda g: netdata.digits(g, heldout="test", **kw)


PROBLEMS: tuple[Problem, ...] = (
    Problem("mlp-relu-depth6", lambda: nets.MLP(64, (64,) * 6, 10, "relu"), _digits(), 128, 1000, "6 hidden layers (family: 1-4)"),
    Problem("mlp-relu-wide512", lambda: nets.MLP(64, (512, 256), 10, "relu"), _digits(), 128, 1000, "width 512 (family: 8-256)"),
    Problem("mlp-silu-layernorm", lambda: nets.MLP(64, (128, 128), 10, "silu", "layer"), _digits(), 64, 1000, "SiLU activation"),
    Problem("mlp-elu-residual", lambda: nets.MLP(32, (96, 96, 96), 6, "elu", residual=True),
            lambda g: netdata.teacher(g, d=32, n_out=6, width=48), 64, 1000, "ELU, residual MLP"),
    Problem("mlp-leaky-bn-16class", lambda: nets.MLP(24, (128, 64), 16, "leaky_relu", "batch"),
            lambda g: netdata.gaussian_mixture(g, d=24, n_classes=16, separation=1.5), 128, 1000, "leaky ReLU, 16 classes"),
    Problem("mlp-softplus-regress", lambda: nets.MLP(64, (128, 64), 3, "softplus"),
            lambda g: netdata.teacher(g, d=64, n_out=3, kind="regress", width=64, noise=0.05), 64, 1000, "softplus, 64-d regression"),
    Problem("mlp-gelu-long3000", lambda: nets.MLP(64, (48, 48), 10, "gelu"), _digits(label_noise=0.0), 32, 3000, "3,000-step horizon (family: <= 1,000)"),
    Problem("conv-residual-bn", lambda: nets.ConvNet(1, (16, 16, 16), 10, "relu", bn=True, residual=True),
            _digits(image=True), 64, 1000, "residual conv blocks"),
    Problem("conv-grouped-silu", lambda: nets.ConvNet(1, (16, 32, 32), 10, "silu", pool="avg", groups=4),
            _digits(image=True), 64, 1000, "grouped convolutions, SiLU"),
    Problem("conv-deep4-tanh", lambda: nets.ConvNet(1, (8, 16, 16, 32), 10, "tanh", stride=2),
            _digits(image=True), 64, 1000, "4 conv layers (family: 1-3)"),
    Problem("gru-count", lambda: nets.RNNModel(6, 8, 32, 13, "gru"),
            lambda g: netdata.sequence(g, task="count", vocab=6, length=12), 64, 1000, "counting task, length 12"),
    Problem("lstm-retrieval", lambda: nets.RNNModel(8, 8, 48, 7, "lstm"),
            lambda g: netdata.sequence(g, task="retrieval", vocab=8, length=12), 64, 1000, "retrieval task, length 12"),
    Problem("transformer3-retrieval", lambda: nets.Transformer(8, 10, 24, 4, 3, 7),
            lambda g: netdata.sequence(g, task="retrieval", vocab=8, length=10), 32, 1000, "3 blocks, 4 heads, retrieval"),
    Problem("bag-of-embeddings", lambda: nets.BagOfEmbeddings(12, 16, 12, hidden=32),
            lambda g: netdata.sequence(g, task="majority", vocab=12, length=16), 64, 1000, "embedding-bag model"),
    Problem("autoencoder-silu-deep", lambda: nets.Autoencoder(64, (128, 64, 16), "silu"),
            _digits(target="reconstruct"), 64, 1000, "SiLU, 3-layer encoder of width 128"),
    Problem("logreg-256d", lambda: nets.Linear(256, 5),
            lambda g: netdata.gaussian_mixture(g, d=256, n_classes=5, separation=0.3), 64, 1000, "256 input dimensions (family: <= 64)"),
    Problem("linreg-cond1e5", lambda: nets.Linear(48, 2),
            lambda g: netdata.linear_regression(g, d=48, n_out=2, condition=1e5, noise=0.05), 32, 1000, "condition number 1e5 (family: <= 1e3)"),
)


@dataclass(frozen=True)
class SuiteConfig:
    problems: tuple[str, ...] = tuple(p.name for p in PROBLEMS)
    seeds: int = 5                   # evaluation seeds per problem (stacked, paired)
    tune_seeds: int = 2              # separate seeds for tuning the baselines' lr
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    sgd_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
    steps_scale: float = 1.0         # multiplies every problem's horizon (quick budget)
    learned: tuple[str, ...] = ("default", "hrnn", "l2l-mlp")   # shipped rules shown
    smooth: float = 0.05             # smoothing window (fraction of the horizon) of the speed-up curves
    workers: int = 1                 # processes (1 thread each) over problems; numbers do not depend on it


@dataclass(frozen=True)
class LoptSuiteConfig(LoptTrainConfig):
    """The suite, plus how ``learnt reproduce / meta-train lopt-suite`` meta-trains the rule
    first (the fields of :class:`~learnt.experiments.lopt_train.LoptTrainConfig`)."""

    suite: SuiteConfig = field(default_factory=SuiteConfig)


def suite_config(budget: str) -> LoptSuiteConfig:
    t = train_config(budget)
    common = {"family": t.family, "controller": t.controller, "train": t.train, "val_tasks": t.val_tasks}
    if budget == "quick":
        return LoptSuiteConfig(
            suite=SuiteConfig(problems=("mlp-relu-depth6", "logreg-256d", "autoencoder-silu-deep"), seeds=2,
                              tune_seeds=1, lr_grid=(1e-3, 1e-2, 1e-1), sgd_grid=(1e-2, 1e-1, 1.0), steps_scale=0.1,
                              learned=("default",)), **common)
    return LoptSuiteConfig(**common)


def _problem(name: str) -> Problem:
    for p in PROBLEMS:
        if p.name == name:
            return p
    raise ValueError(f"unknown suite problem {name!r}; expected one of {[p.name for p in PROBLEMS]}")


_DATA: dict = {}


def _data(prob: Problem, seed: int, split: str, h: int):
    """The problem's data for (seed, split), generated once per process from its own stream."""
    key = (prob.name, seed, split)
    if key not in _DATA:
        if len(_DATA) > 8:
            _DATA.clear()
        _DATA[key] = prob.data(make_generator(seed, split, 0, h))
    return _DATA[key]


def run_problem(prob: Problem, rule, seed: int, split: str, n: int, steps: int) -> dict:
    """Train ``n`` stacked initialisations of ``prob`` with ``rule`` for ``steps`` steps.

    Data come from ``make_generator(seed, split, 0, h)`` and initialisations and batches from
    ``make_generator(seed, split, 1, h)`` (h from the problem name), so every method sees the
    same data, initialisations and batches. Returns the minibatch-loss curve (steps+1, n),
    final train / test metrics and the wall time per step."""
    h = sum(map(ord, prob.name))
    data = _data(prob, seed, split, h)
    g = make_generator(seed, split, 1, h)
    task = NetTask(prob.build, data, n_problems=n, batch_size=prob.batch_size, name=prob.name)
    task.horizon = steps
    params = task.init_params(g)
    init = task.metrics(params, "train")["loss"]
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        res = unroll(task, rule, params, init_state(rule, params, task), task.batches("train", g), steps,
                     differentiable=False, check=False)
    wall = (time.perf_counter() - t0) / max(steps, 1)
    ok = all(torch.isfinite(p).all() for p in res.params.values())
    train = task.metrics(res.params, "train") if ok else {"loss": torch.full((n,), math.inf)}
    test = task.metrics(res.params, "test") if ok else {"loss": torch.full((n,), math.inf), "accuracy": torch.zeros(n)}
    return {"curve": res.losses.numpy(), "train_loss": finite_or_inf(train["loss"].numpy()), "init_loss": init.numpy(),
            "test_loss": finite_or_inf(test["loss"].numpy()), "test_accuracy": test.get("accuracy", torch.full((n,), math.nan)).numpy(),
            "wall_per_step": wall}


def _smooth(curve: np.ndarray, window: int) -> np.ndarray:
    c = finite_or_inf(curve)
    out = np.empty_like(c)
    cs = np.cumsum(np.vstack([np.zeros((1, c.shape[1])), c]), 0)
    for t in range(len(c)):
        lo = max(0, t - window + 1)
        out[t] = (cs[t + 1] - cs[lo]) / (t + 1 - lo)
    return out


def steps_to_reach(curve: np.ndarray, target: np.ndarray, window: int) -> np.ndarray:
    """First step at which each column's smoothed curve is <= its target (len(curve) if never)."""
    s = _smooth(curve, window)
    hit = s <= target[None, :]
    return np.where(hit.any(0), hit.argmax(0), len(curve)).astype(np.float64)


def tune(prob: Problem, make, grid, cfg: SuiteConfig, seed: int, steps: int) -> tuple[float, dict]:
    """Best lr on the tuning seeds (mean final training loss; diverged runs are +inf)."""
    scores = {}
    for lr in grid:
        r = run_problem(prob, make(lr), seed, "val", cfg.tune_seeds, steps)
        scores[lr] = float(np.mean(r["train_loss"]))
    best = min(scores, key=lambda k: (scores[k], k))
    return best, scores


def _learned(names: tuple[str, ...], trained, device: str) -> dict:
    from learnt import pretrained
    out = {}
    own = trained is not None and getattr(trained, "kind", "") == "adam-controller"
    for n in names:
        if n == "default" and own:
            out[n] = trained.to(device).eval()
        elif n in pretrained.available():
            out[n] = pretrained.load(n, device)
        else:
            raise ValueError(f"learned rule {n!r} is not shipped; expected one of {pretrained.available()}")
    if trained is not None and not own:          # e.g. an HRNN meta-trained on the same networks
        out[f"{trained.kind}-trained"] = trained.to(device).eval()
    return out


def _rule_identity(rule) -> bytes:
    """What a rule's numbers depend on: its kind, config and weights."""
    out = (getattr(rule, "kind", type(rule).__name__) + json.dumps(rule.config(), sort_keys=True, default=str)).encode()
    if isinstance(rule, torch.nn.Module):
        for k, v in sorted(rule.state_dict().items()):
            out += k.encode() + v.detach().cpu().contiguous().numpy().tobytes()
    return out


def _fingerprint(name: str, s: "SuiteConfig", seed: int, label: str, identity: bytes) -> str:
    """What one method's runs on one problem depend on: the suite settings that change runs
    (not the worker count, the problem list or the rules shown), the seed, the problem, the
    method's label and identity (a baseline's grid, a learned rule's weights)."""
    import hashlib
    keep = {k: v for k, v in dataclasses.asdict(s).items() if k not in ("workers", "problems", "learned")}
    h = hashlib.sha256(json.dumps({"suite": keep, "seed": seed, "problem": name, "method": label},
                                  sort_keys=True, default=str).encode())
    h.update(identity)
    return h.hexdigest()


_ARRAYS = ("curve", "train_loss", "init_loss", "test_loss", "test_accuracy")


def _load_run(path: Path, fingerprint: str) -> dict | None:
    try:
        got = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if got.get("fingerprint") != fingerprint:
        return None
    return _decode({k: v for k, v in got.items() if k != "fingerprint"})


def _save_run(path: Path, fingerprint: str, run: dict) -> None:
    def enc(a):
        return [None if not np.isfinite(x) else float(x) for x in np.ravel(a)] if np.ndim(a) <= 1 else [enc(r) for r in a]
    body = {k: (enc(v) if k in _ARRAYS else v) for k, v in run.items()}
    atomic_json_dump({"fingerprint": fingerprint, **body}, path)


def _decode(run: dict) -> dict:
    """Arrays as float64, non-finite losses as inf and missing accuracies as nan (JSON stores
    both as null), so fresh and reused runs score identically."""
    out = dict(run)
    for k in _ARRAYS:
        a = np.asarray(run[k], dtype=np.float64)
        out[k] = a if k == "test_accuracy" else np.where(np.isnan(a), np.inf, a)
    return out


def method_runs(name: str, s: "SuiteConfig", seed: int, learned: dict, cache: Path | None = None) -> dict:
    """Every method's evaluation runs on one problem: the baselines tuned on the tuning seeds,
    then every method on the evaluation seeds. With ``cache``, each method's runs are stored as
    ``cache/NAME/METHOD.json`` under a fingerprint of everything they depend on and reused on
    a rerun (after a crash, or when only a learned rule changed)."""
    prob = _problem(name)
    steps = max(10, int(round(prob.steps * s.steps_scale)))

    def tuned(make, grid):
        lr = tune(prob, make, grid, s, seed, steps)[0]
        return make(lr), lr

    plan: dict[str, tuple] = {"adam@1e-3": (lambda: (adam(1e-3), None), b"adam1e-3"),
                              "adamw@1e-3": (lambda: (adamw(1e-3), None), b"adamw1e-3")}
    for label, make, grid in (("adam-tuned", adam, s.lr_grid), ("adamw-tuned", adamw, s.lr_grid),
                              ("sgdm-tuned", momentum, s.sgd_grid)):
        plan[label] = ((lambda make=make, grid=grid: tuned(make, grid)), json.dumps([make.__name__, list(grid)]).encode())
    for label, rule in learned.items():
        plan[label] = ((lambda rule=rule: (rule, None)), _rule_identity(rule))
    runs = {}
    for label, (build, identity) in plan.items():
        fp = _fingerprint(name, s, seed, label, identity)
        path = None if cache is None else cache / name / f"{label}.json"
        got = None if path is None else _load_run(path, fp)
        if got is not None:
            runs[label] = got
            continue
        rule, lr = build()
        run = _decode({**run_problem(prob, rule, seed, "test", s.seeds, steps), "lr": lr})
        log.info("%s %s: train loss %.4g", name, label, float(np.mean(run["train_loss"])))
        if path is not None:
            _save_run(path, fp, run)
        runs[label] = run
    return runs


def score_problem(name: str, s: "SuiteConfig", runs: dict) -> tuple[list, dict, dict]:
    """Rows, plotted curves and per-method summary of one problem from its methods' runs."""
    steps = len(runs["adam-tuned"]["curve"]) - 1
    window = max(1, int(s.smooth * steps))
    ref = runs["adam-tuned"]
    target = _smooth(ref["curve"], window)[-1]
    ref_steps = steps_to_reach(ref["curve"], target, window)
    adam_wall = runs["adam@1e-3"]["wall_per_step"]
    rows, curves, summary = [], {}, {}
    for label, r in runs.items():
        lr = r.get("lr")
        extra = {"lr": lr} if lr is not None else {}
        diverged = (~np.isfinite(r["train_loss"])) | (r["train_loss"] > r["init_loss"])
        speed = ref_steps / np.maximum(steps_to_reach(r["curve"], target, window), 1.0)
        p = {} if label == "adam-tuned" else {"p_vs": {"adam-tuned": paired_wilcoxon_less(r["train_loss"], ref["train_loss"])}}
        rows += [stat_row(label, name, "final_train_loss", r["train_loss"], **extra, **p),
                 stat_row(label, name, "test_loss", r["test_loss"], **extra),
                 stat_row(label, name, "speedup_vs_tuned_adam", speed, **extra),
                 stat_row(label, name, "diverged", diverged.astype(float), **extra),
                 stat_row(label, name, "wall_vs_adam", [r["wall_per_step"] / adam_wall], **extra)]
        if np.isfinite(r["test_accuracy"]).all():
            rows.append(stat_row(label, name, "test_accuracy", r["test_accuracy"], **extra))
        summary[label] = {"train_loss": float(np.mean(r["train_loss"])), "diverged": bool(diverged.any()),
                          "speedup": float(np.median(speed)), "wall_vs_adam": r["wall_per_step"] / adam_wall}
        c = finite_or_inf(r["curve"])
        sm = _smooth(c, window)
        every = max(1, len(c) // 100)
        curves[label] = {"step": list(range(0, len(c), every)), "mean": [float(np.mean(sm[t])) for t in range(0, len(c), every)]}
    return rows, curves, summary


def evaluate_problem(name: str, s: "SuiteConfig", seed: int, learned: dict, cache: Path | None = None) -> tuple[list, dict, dict]:
    """Tune the baselines on the tuning seeds, run every method on the evaluation seeds of one
    problem; returns (rows, curves, per-method summary)."""
    return score_problem(name, s, method_runs(name, s, seed, learned, cache))


def _worker_init() -> None:
    torch.set_num_threads(1)


def evaluate(cfg: LoptSuiteConfig, ctx: RunContext, trained):
    """Every problem of the suite (in ``suite.workers`` processes of 1 thread each; the numbers
    do not depend on the number of workers, only the wall-time ratios on the machine's load).

    Each method's runs on each problem are written atomically to ``OUT/problems/NAME/METHOD.json``
    with a fingerprint of everything they depend on; a rerun (after a crash or a kill, or after
    a learned rule changed) reuses the runs whose fingerprint matches and computes only the rest.
    Wall-time ratios of reused runs come from the run that made them."""
    s = cfg.suite
    learned = _learned(s.learned, trained, cfg.device)
    cache_dir = ctx.out / "problems"
    done: dict[str, tuple] = {}

    def finish(name: str, result: tuple) -> None:
        done[name] = result
        log.info("lopt-suite: %s done", name)
        bar.update(1)

    from tqdm.auto import tqdm
    bar = tqdm(total=len(s.problems), desc="lopt-suite problems", disable=not ctx.progress, leave=False)
    if s.workers > 1 and len(s.problems) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(s.workers, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
            futures = {pool.submit(evaluate_problem, name, s, ctx.seed, learned, cache_dir): name for name in s.problems}
            for f in as_completed(futures):
                finish(futures[f], f.result())
    else:
        for name in s.problems:
            finish(name, evaluate_problem(name, s, ctx.seed, learned, cache_dir))
    bar.close()
    rows, curves, per_problem = [], {}, {}
    for name in s.problems:
        r, c, summ = done[name]
        rows += r
        curves[name] = c
        per_problem[name] = summ
    rows += summary_rows(per_problem, list(next(iter(per_problem.values()))))
    return rows, {}, {"curves_by_problem": curves, "problems": {p.name: p.held_out for p in PROBLEMS if p.name in s.problems}}


def summary_rows(per_problem: dict, methods: list[str]) -> list[dict]:
    """Suite-level rows (setting ``suite``): fraction of problems won against tuned Adam and
    Adam(1e-3), IQM of log10(final loss / tuned Adam's), median speed-up, median wall ratio,
    fraction of problems with any diverged seed."""
    rows = []
    for m in methods:
        won = [per_problem[p][m]["train_loss"] <= per_problem[p]["adam-tuned"]["train_loss"] for p in per_problem]
        won1 = [per_problem[p][m]["train_loss"] <= per_problem[p]["adam@1e-3"]["train_loss"] for p in per_problem]
        ratio = np.array([math.log10(max(per_problem[p][m]["train_loss"], 1e-30) / max(per_problem[p]["adam-tuned"]["train_loss"], 1e-30))
                          if math.isfinite(per_problem[p][m]["train_loss"]) else math.inf for p in per_problem])
        q = np.sort(ratio)
        lo, hi = int(len(q) * 0.25), int(math.ceil(len(q) * 0.75))
        iqm = float(np.mean(q[lo:hi])) if hi > lo else float(np.mean(q))
        n = len(per_problem)
        new = [{"method": m, "setting": "suite", "metric": "won_vs_tuned_adam", "mean": float(np.mean(won)), "n": n},
                 {"method": m, "setting": "suite", "metric": "won_vs_adam_1e-3", "mean": float(np.mean(won1)), "n": n},
                 {"method": m, "setting": "suite", "metric": "iqm_log10_loss_ratio", "mean": iqm, "n": n},
                 {"method": m, "setting": "suite", "metric": "median_speedup",
                  "mean": float(np.median([per_problem[p][m]["speedup"] for p in per_problem])), "n": n},
                 {"method": m, "setting": "suite", "metric": "median_wall_vs_adam",
                  "mean": float(np.median([per_problem[p][m]["wall_vs_adam"] for p in per_problem])), "n": n},
                 {"method": m, "setting": "suite", "metric": "diverged_problems",
                  "mean": float(np.mean([per_problem[p][m]["diverged"] for p in per_problem])), "n": n}]
        rows += [{**r, "ci95": math.nan} for r in new]   # one value over the suite: no interval
    return rows


def plot(results: dict, out: Path) -> list[Path]:
    from matplotlib.figure import Figure
    curves = results.get("curves_by_problem", {})
    if not curves:
        return []
    names = list(curves)
    cols = min(4, len(names))
    rows_ = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4 * cols, 3 * rows_))
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows_, cols, i + 1)
        for label, c in curves[name].items():
            style = "-" if label in ("default", "hrnn", "l2l-mlp") else "--"
            ax.plot(c["step"], c["mean"], style, label=label, lw=1.5 if label == "default" else 1)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=6)
    fig.supxlabel("step")
    fig.supylabel("smoothed training loss (minibatch)")
    fig.tight_layout()
    path = out / "lopt_suite_curves.png"
    fig.savefig(path, dpi=90)
    return [path]


def _load_trained(cfg, path: str):
    from learnt.learned import load_rule
    p = Path(path)
    return load_rule(p / "meta" / "selected.pt" if p.is_dir() else p)


LOPT_SUITE = Experiment(
    name="lopt-suite",
    description="the default learned optimizer (and the shipped HRNN / L2L) on 17 held-out networks vs tuned Adam/AdamW/SGD-momentum",
    config=suite_config,
    meta_train=meta_train,
    evaluate=evaluate,
    plot=plot,
    load_trained=_load_trained,
    load_pretrained=lambda cfg: __import__("learnt.pretrained", fromlist=["load"]).load("default", cfg.device),
)
