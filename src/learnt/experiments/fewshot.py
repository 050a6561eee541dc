"""Few-shot experiments (Ravi & Larochelle 2017).

``fewshot-glyphs``: 5-way 1-shot and 5-shot classification on the Hershey glyph set
(Omniglot-like, split by alphabet), 15 queries per class, accuracy (%) with 95% CI over the
same test episodes for every method: the LSTM meta-learner, MAML (second and first order),
Prototypical Networks, nearest neighbour in a pre-trained embedding and fine-tuning that
pre-trained network on the support set (its learning rate and mode tuned on validation
episodes). One model per method and shot, as in the paper. Plots: validation accuracy vs
meta-training episodes, and the meta-learner's input gate (learning rate) and forget gate
per learner layer over the inner steps (the paper's gate figure).

``fewshot-sinusoid``: MAML's sinusoid regression (K = 10 support points) as a fast sanity
benchmark: meta-learner LSTM vs MAML vs a network pre-trained on all tasks then fine-tuned;
MSE on 100 query points with 95% CI.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.results import stat_row
from learnt.fewshot import (MAML, ConvLearner, EpisodeSampler, EpisodicTrainConfig, EpisodicTrainer, FineTune,
                            GlyphConfig, MetaLearnerLSTM, NearestNeighbour, Pretrained, ProtoNet, SineMLP,
                            SinusoidEpisodes, evaluate_method, load_glyphs, load_method)
from learnt.meta.stats import mean_ci95
from learnt.seeding import derive_seed, make_generator

log = logging.getLogger(__name__)


def _seeded(seed: int, tag: int, build):
    """Build a network with torch's global RNG seeded from (seed, tag): same seed, same init."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "train", 0, 900 + tag))
        return build()


def _train(method, sample, tcfg: EpisodicTrainConfig, ctx: RunContext, name: str, validate, device: str):
    out = ctx.out / "train" / name
    trainer = EpisodicTrainer(method, sample, tcfg, seed=ctx.seed, validate=validate, out_dir=out,
                              progress=ctx.progress, device=device)
    resume = ctx.resume and trainer.checkpoint_path.exists()
    res = trainer.train(resume=resume)
    log.info("%s: best val %.4g at %d (%.0f s)", name, res.best_score, res.best_iteration, res.wall_seconds)
    return res


# ============================================================================ glyphs
@dataclass(frozen=True)
class GlyphsConfig:
    data: GlyphConfig = field(default_factory=GlyphConfig)
    n_way: int = 5
    shots: tuple[int, ...] = (1, 5)
    n_query: int = 15
    filters: int = 32                        # paper: 32; the full CPU budget uses 16 (see config("full"))
    lstm_steps_1shot: int = 12               # paper: 12 updates, batch 5 (the whole support set)
    lstm_steps_5shot: int = 5                # paper: 5 updates, batch 25
    lstm_hidden: int = 20
    maml_steps: int = 5
    maml_inner_lr: float = 0.4
    methods: tuple[str, ...] = ("lstm", "maml", "fomaml", "protonet", "nearest-neighbour", "finetune")
    train: EpisodicTrainConfig = field(default_factory=lambda: EpisodicTrainConfig(episodes=600, val_every=150))
    lstm_episodes: int = 600                 # per shot; the other meta-learners use train.episodes
    pretrain_batches: int = 1000
    pretrain_batch_size: int = 64
    pretrain_lr: float = 1e-3
    finetune_steps: int = 20
    finetune_lrs: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0, 3.0)
    finetune_modes: tuple[str, ...] = ("head", "all")
    val_episodes: int = 40
    tune_episodes: int = 40
    test_episodes: int = 600
    gate_episodes: int = 50
    device: str = "cpu"

    def __post_init__(self) -> None:
        bad = set(self.methods) - {"lstm", "maml", "fomaml", "protonet", "nearest-neighbour", "finetune"}
        if bad:
            raise ValueError(f"methods {sorted(bad)} unknown; expected lstm, maml, fomaml, protonet, "
                             "nearest-neighbour, finetune")
        if not self.shots or any(k < 1 for k in self.shots):
            raise ValueError(f"shots={self.shots}; expected one or more values >= 1")


def glyphs_config(budget: str) -> GlyphsConfig:
    cfg = GlyphsConfig()
    if budget == "quick":
        return dataclasses.replace(cfg, filters=16, lstm_episodes=60, pretrain_batches=100, test_episodes=100,
                                   val_episodes=20, tune_episodes=20, gate_episodes=20,
                                   train=dataclasses.replace(cfg.train, episodes=60, val_every=20),
                                   finetune_lrs=(0.1, 1.0))
    # ~20 min on one CPU core: a 16-filter learner and 600 meta-training episodes per model
    # instead of 32 filters and 50k-75k episodes (paper); 600 test episodes as in the paper.
    return dataclasses.replace(cfg, filters=16)


def _lstm_steps(cfg: GlyphsConfig, k: int) -> int:
    return cfg.lstm_steps_1shot if k == 1 else cfg.lstm_steps_5shot


def _learner(cfg: GlyphsConfig, n_out: int, image_shape) -> ConvLearner:
    return ConvLearner(image_shape[0], image_shape[1], n_out, cfg.filters)


def glyphs_meta_train(cfg: GlyphsConfig, ctx: RunContext) -> dict:
    splits = load_glyphs(cfg.data, progress=ctx.progress)
    shape = splits["train"].image_shape
    dev = cfg.device
    trained: dict = {"methods": {}, "history": {}}

    # pre-trained classifier over all meta-train classes (for nearest neighbour and fine-tuning)
    if {"nearest-neighbour", "finetune"} & set(cfg.methods):
        tr = splits["train"]
        n_cls, per = len(tr), tr.count(0)

        def batch(i: int):
            g = make_generator(ctx.seed, "train", i, 21)
            c = torch.randint(n_cls, (cfg.pretrain_batch_size,), generator=g)
            j = torch.randint(per, (cfg.pretrain_batch_size,), generator=g)
            return tr.images[c, j].float() / 255.0, c

        pre = _seeded(ctx.seed, 0, lambda: Pretrained(_learner(cfg, n_cls, shape))).to(dev)
        tcfg = dataclasses.replace(cfg.train, episodes=cfg.pretrain_batches, meta_lr=cfg.pretrain_lr,
                                   clip_norm=10.0, val_every=cfg.pretrain_batches)
        _train(pre, batch, tcfg, ctx, "pretrained", None, dev)
        trained["methods"]["pretrained"] = pre

    for k in cfg.shots:
        train_s = EpisodeSampler(splits["train"], cfg.n_way, k, cfg.n_query, split="train", seed=ctx.seed)
        val_s = EpisodeSampler(splits["val"], cfg.n_way, k, cfg.n_query, split="val", seed=ctx.seed)
        builders = {
            "lstm": lambda: MetaLearnerLSTM(_learner(cfg, cfg.n_way, shape), "classification", _lstm_steps(cfg, k),
                                            cfg.lstm_hidden, seed=ctx.seed),
            "maml": lambda: MAML(_learner(cfg, cfg.n_way, shape), "classification", cfg.maml_steps, cfg.maml_inner_lr),
            "fomaml": lambda: MAML(_learner(cfg, cfg.n_way, shape), "classification", cfg.maml_steps,
                                   cfg.maml_inner_lr, first_order=True),
            "protonet": lambda: ProtoNet(_learner(cfg, cfg.n_way, shape)),
        }
        for name, build in builders.items():
            if name not in cfg.methods:
                continue
            m = _seeded(ctx.seed, 1 + list(builders).index(name), build).to(dev)
            def validate(method):
                mean, ci, _ = mean_ci95(evaluate_method(method, val_s, cfg.val_episodes, device=dev) * 100)
                return mean, {"ci95": ci}

            tcfg = cfg.train if name != "lstm" else dataclasses.replace(cfg.train, episodes=cfg.lstm_episodes)
            res = _train(m, train_s.episode, tcfg, ctx, f"{name}-{k}shot", validate, dev)
            trained["methods"][f"{name}-{k}shot"] = m
            trained["history"][f"{name}-{k}shot"] = {"step": [h["iteration"] for h in res.history],
                                                     "mean": [h["val"] for h in res.history],
                                                     "ci95": [h["ci95"] for h in res.history]}
    return trained


def glyphs_load_trained(cfg: GlyphsConfig, path: str) -> dict:
    """Methods saved by a previous run: ``PATH/train/<method>-<k>shot/best.pt`` (and ``pretrained``)."""
    root = Path(path) / "train"
    out: dict = {"methods": {}, "history": {}}
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if (d / "best.pt").is_file():
            out["methods"][d.name] = load_method(d / "best.pt", cfg.device)
    if not out["methods"]:
        raise FileNotFoundError(f"no trained few-shot methods under {str(root)!r}; expected <method>-<k>shot/best.pt")
    return out


def glyphs_load_pretrained(cfg: GlyphsConfig) -> dict:
    """The shipped meta-learners (``learnt.fewshot.load_pretrained``); only the ``lstm`` rows are evaluated."""
    from learnt.fewshot import load_pretrained
    return {"methods": {f"lstm-{k}shot": load_pretrained(k_shot=k, device=cfg.device).method for k in cfg.shots},
            "history": {}}


def glyphs_evaluate(cfg: GlyphsConfig, ctx: RunContext, trained: dict):
    splits = load_glyphs(cfg.data)
    methods, dev = trained["methods"], cfg.device
    rows, extra = [], {"finetune_tuning": {}, "gates": {}, "episodes_trained": {}}
    for k in cfg.shots:
        setting = f"{cfg.n_way}-way {k}-shot"
        test_s = EpisodeSampler(splits["test"], cfg.n_way, k, cfg.n_query, split="test", seed=ctx.seed)
        val_s = EpisodeSampler(splits["val"], cfg.n_way, k, cfg.n_query, split="val", seed=ctx.seed)
        to_eval: dict = {}
        for name in ("lstm", "maml", "fomaml", "protonet"):
            if name in cfg.methods and f"{name}-{k}shot" in methods:
                to_eval[name] = methods[f"{name}-{k}shot"]
        pre = methods.get("pretrained")
        if pre is not None and "nearest-neighbour" in cfg.methods:
            to_eval["nearest-neighbour"] = NearestNeighbour(pre.learner, "classification")
        if pre is not None and "finetune" in cfg.methods:
            scores = {}
            for mode in cfg.finetune_modes:
                for lr in cfg.finetune_lrs:
                    ft = FineTune(pre.learner, "classification", cfg.finetune_steps, lr, mode)
                    scores[f"{mode} lr={lr:g}"] = (float(evaluate_method(ft, val_s, cfg.tune_episodes, device=dev).mean()),
                                                   mode, lr)
            best = max(scores, key=lambda s: scores[s][0])
            _, mode, lr = scores[best]
            extra["finetune_tuning"][setting] = {s: v[0] * 100 for s, v in scores.items()}
            to_eval["finetune"] = FineTune(pre.learner, "classification", cfg.finetune_steps, lr, mode)
        for name, m in to_eval.items():
            acc = evaluate_method(m, test_s, cfg.test_episodes, device=dev, progress=ctx.progress,
                                  desc=f"{name} {k}-shot") * 100
            more = {}
            if name == "finetune":
                more = {"lr": to_eval[name].lr, "mode": to_eval[name].mode, "steps": cfg.finetune_steps}
            if name in ("lstm", "maml", "fomaml"):
                more["inner_steps"] = m.steps
            rows.append(stat_row(name, setting, "accuracy", acc, **more))
        if "lstm" in to_eval:
            lstm = to_eval["lstm"]
            ins, fgs = [], []
            with torch.no_grad():
                for i in range(cfg.gate_episodes):
                    ep = test_s.episode(i).to(dev)
                    _, tr = lstm.adapt(ep.support_x, ep.support_y, record=True)
                    ins.append(tr["input"])
                    fgs.append(tr["forget"])
            extra["gates"][setting] = {"names": lstm.flat.names, "input": np.mean(ins, 0).tolist(),
                                       "forget": np.mean(fgs, 0).tolist()}
    curves = {f"{n} ({k.split('-')[-1]})": h for n_k, h in trained.get("history", {}).items()
              for n, k in [n_k.rsplit("-", 1)] if h["step"]}
    extra["paper_miniimagenet"] = {"finetune": [28.86, 49.79], "nearest-neighbour": [41.08, 51.04],
                                   "lstm": [43.44, 60.60], "maml": [48.70, 63.11]}
    return rows, curves, extra


def _layer_label(name: str) -> str | None:
    """``body.4.weight`` -> ``conv2``, ``head.weight`` -> ``head``; None for biases and batch norm."""
    if name == "head.weight":
        return "head"
    parts = name.split(".")
    if parts[0] == "body" and parts[-1] == "weight" and int(parts[1]) % 4 == 0:
        return f"conv{int(parts[1]) // 4 + 1}"
    return None


def glyphs_plot(results: dict, out: Path) -> list[Path]:
    from learnt.plotting import plt

    paths = []
    curves = results.get("curves") or {}
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
        for name, c in sorted(curves.items()):
            step, mean = np.asarray(c["step"]), np.asarray(c["mean"], float)
            ci = np.nan_to_num(np.asarray(c["ci95"], float))
            (ln,) = ax.plot(step, mean, "-o" if name.startswith("lstm") else "--o", ms=3, label=name)
            ax.fill_between(step, mean - ci, mean + ci, color=ln.get_color(), alpha=0.12, lw=0)
        ax.set_xlabel("meta-training episodes")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title("Glyphs, 5-way: validation accuracy during meta-training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        paths.append(out / "accuracy_vs_episodes.png")
        fig.savefig(paths[-1])
        plt.close(fig)
    gates = results.get("gates") or {}
    if gates:
        fig, axes = plt.subplots(2, len(gates), figsize=(5.2 * len(gates), 7), dpi=110, squeeze=False)
        for col, (setting, gt) in enumerate(gates.items()):
            names = gt["names"]
            for row, key, label in ((0, "input", "input gate (learning rate)"), (1, "forget", "forget gate")):
                vals = np.asarray(gt[key])                                  # (steps, tensors)
                ax = axes[row, col]
                for j, n in enumerate(names):
                    label = _layer_label(n)
                    if label is not None:
                        ax.plot(np.arange(1, len(vals) + 1), vals[:, j], "-o", ms=3, label=label)
                ax.set_xlabel("inner step")
                ax.set_ylabel(label)
                ax.set_title(f"{setting}: mean {key} gate per layer")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / "gates.png")
        fig.savefig(paths[-1])
        plt.close(fig)
    return paths


# ============================================================================ sinusoid
@dataclass(frozen=True)
class SinusoidConfig:
    k_shot: int = 10
    n_query_train: int = 10
    n_query_test: int = 100
    hidden: int = 40
    inner_steps: int = 5                 # every method adapts for the same number of steps
    maml_inner_lr: float = 0.01
    lstm_hidden: int = 20
    methods: tuple[str, ...] = ("lstm", "maml", "fomaml", "finetune")
    # MAML: meta-batch 10 (paper: 25) for 1000 meta-updates (paper: 70k); a few minutes on one core
    maml_train: EpisodicTrainConfig = field(default_factory=lambda: EpisodicTrainConfig(
        episodes=1000, meta_batch=10, val_every=100))
    lstm_train: EpisodicTrainConfig = field(default_factory=lambda: EpisodicTrainConfig(
        episodes=1000, meta_batch=4, val_every=100))
    pretrain_batches: int = 2000
    finetune_lrs: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    val_episodes: int = 100
    test_episodes: int = 600
    device: str = "cpu"


def sinusoid_config(budget: str) -> SinusoidConfig:
    cfg = SinusoidConfig()
    if budget == "quick":
        return dataclasses.replace(cfg, maml_train=dataclasses.replace(cfg.maml_train, episodes=150, val_every=50),
                                   lstm_train=dataclasses.replace(cfg.lstm_train, episodes=100, val_every=50),
                                   pretrain_batches=200, val_episodes=30, test_episodes=200)
    return cfg


def sinusoid_meta_train(cfg: SinusoidConfig, ctx: RunContext) -> dict:
    dev = cfg.device
    train = SinusoidEpisodes(cfg.k_shot, cfg.n_query_train, split="train", seed=ctx.seed)
    val = SinusoidEpisodes(cfg.k_shot, cfg.n_query_test, split="val", seed=ctx.seed)
    out: dict = {"methods": {}, "history": {}}
    builders = {
        "lstm": (lambda: MetaLearnerLSTM(SineMLP(cfg.hidden), "regression", cfg.inner_steps, cfg.lstm_hidden,
                                         seed=ctx.seed), cfg.lstm_train),
        "maml": (lambda: MAML(SineMLP(cfg.hidden), "regression", cfg.inner_steps, cfg.maml_inner_lr), cfg.maml_train),
        "fomaml": (lambda: MAML(SineMLP(cfg.hidden), "regression", cfg.inner_steps, cfg.maml_inner_lr,
                                first_order=True), cfg.maml_train),
    }
    for name, (build, tcfg) in builders.items():
        if name not in cfg.methods:
            continue
        m = _seeded(ctx.seed, 10 + list(builders).index(name), build).to(dev)
        def validate(method):
            mean, ci, _ = mean_ci95(evaluate_method(method, val, cfg.val_episodes, device=dev))
            return -mean, {"ci95": ci}

        res = _train(m, train.episode, tcfg, ctx, name, validate, dev)
        out["methods"][name] = m
        out["history"][name] = {"step": [h["iteration"] for h in res.history],
                                "mean": [-h["val"] for h in res.history], "ci95": [h["ci95"] for h in res.history]}
    if "finetune" in cfg.methods:
        pre = _seeded(ctx.seed, 20, lambda: Pretrained(SineMLP(cfg.hidden), "regression")).to(dev)
        tcfg = dataclasses.replace(cfg.maml_train, episodes=cfg.pretrain_batches, val_every=cfg.pretrain_batches,
                                   meta_batch=1, clip_norm=10.0)
        _train(pre, train.pretrain_batch, tcfg, ctx, "pretrained", None, dev)
        out["methods"]["pretrained"] = pre
    return out


def sinusoid_load_trained(cfg: SinusoidConfig, path: str) -> dict:
    root = Path(path) / "train"
    out = {"methods": {d.name: load_method(d / "best.pt", cfg.device) for d in sorted(root.iterdir())
                       if (d / "best.pt").is_file()} if root.is_dir() else {}, "history": {}}
    if not out["methods"]:
        raise FileNotFoundError(f"no trained methods under {str(root)!r}; expected <method>/best.pt")
    return out


def sinusoid_evaluate(cfg: SinusoidConfig, ctx: RunContext, trained: dict):
    dev = cfg.device
    test = SinusoidEpisodes(cfg.k_shot, cfg.n_query_test, split="test", seed=ctx.seed)
    val = SinusoidEpisodes(cfg.k_shot, cfg.n_query_test, split="val", seed=ctx.seed)
    methods = trained["methods"]
    to_eval = {n: methods[n] for n in ("lstm", "maml", "fomaml") if n in cfg.methods and n in methods}
    extra: dict = {}
    if "finetune" in cfg.methods and "pretrained" in methods:
        pre = methods["pretrained"]
        scores = {lr: float(evaluate_method(FineTune(pre.learner, "regression", cfg.inner_steps, lr), val,
                                            cfg.val_episodes, device=dev).mean()) for lr in cfg.finetune_lrs}
        lr = min(scores, key=scores.get)
        extra["finetune_tuning"] = {f"{k:g}": v for k, v in scores.items()}
        to_eval["finetune"] = FineTune(pre.learner, "regression", cfg.inner_steps, lr)
    rows = []
    setting = f"{cfg.k_shot}-shot, {cfg.inner_steps} steps"
    for name, m in to_eval.items():
        mse = evaluate_method(m, test, cfg.test_episodes, device=dev)
        more = {"lr": m.lr} if name == "finetune" else {}
        rows.append(stat_row(name, setting, "mse", mse, **more))
    curves = {n: h for n, h in trained.get("history", {}).items() if h["step"]}
    return rows, curves, extra


def sinusoid_plot(results: dict, out: Path) -> list[Path]:
    from learnt.experiments.plots import loss_curves
    curves = results.get("curves") or {}
    if not curves:
        return []
    return [loss_curves(curves, out / "val_mse_vs_iterations.png", learned=("lstm",),
                        title="Sinusoid: validation MSE vs meta-updates (mean ± 95% CI)",
                        ylabel="validation MSE")]


FEWSHOT_GLYPHS = Experiment(
    name="fewshot-glyphs",
    description="LSTM meta-learner vs MAML, ProtoNets, NN, fine-tuning on 5-way glyph episodes (Ravi & Larochelle 2017, Table 1)",
    config=glyphs_config, meta_train=glyphs_meta_train, evaluate=glyphs_evaluate, plot=glyphs_plot,
    load_trained=glyphs_load_trained, load_pretrained=glyphs_load_pretrained,
)

FEWSHOT_SINUSOID = Experiment(
    name="fewshot-sinusoid",
    description="LSTM meta-learner vs MAML vs pre-train + fine-tune on MAML's sinusoid regression (sanity benchmark)",
    config=sinusoid_config, meta_train=sinusoid_meta_train, evaluate=sinusoid_evaluate, plot=sinusoid_plot,
    load_trained=sinusoid_load_trained,
)
