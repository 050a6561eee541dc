"""Meta-training of the default learned optimizer (:class:`~learnt.learned.AdamController`).

PES (persistent evolution strategies) over whole runs of real networks from
:class:`~learnt.tasks.net_family.NetFamily`, each run as long as its task's horizon and cut
into truncations that carry the optimizee state, so the meta-gradient is unbiased for the
whole horizon. The meta-objective is the mean log ratio of *held-out-batch* losses to the
initial loss, each term floored at log(1e-4) (scale free across tasks; it rewards fast progress
and penalises buying training loss with worse generalisation; the floor keeps tasks whose loss
can reach 0 from dominating). Selection: the same objective on fixed validation tasks.
Runs checkpoint every iteration and resume (``--resume``) after an interruption.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import torch

from learnt.experiments.base import RunContext
from learnt.io import atomic_json_dump
from learnt.learned import AdamController, HierarchicalRNN, load_rule, save_rule
from learnt.meta.objectives import floored_log_ratio
from learnt.meta.trainer import MetaTrainConfig, MetaTrainer, init_state
from learnt.meta.unroll import unroll
from learnt.seeding import make_generator
from learnt.tasks.net_family import KINDS, NetFamily


@dataclass(frozen=True)
class FamilyConfig:
    kinds: tuple[str, ...] = KINDS
    n_problems: int = 4
    min_horizon: int = 100
    max_horizon: int = 1000
    batch_low: int = 8
    batch_high: int = 512
    p_param_scale: float = 0.2
    p_loss_scale: float = 0.2
    heldout_objective: bool = True   # losses report held-out batches (for ES/PES; BPTT's meta-gradient stays the training loss's)


@dataclass(frozen=True)
class HRNNNetsConfig:
    """The hierarchical RNN meta-trained on real networks (``rule="hrnn"``)."""

    init_lr: float = 1e-3
    init_lr_low: float = 1e-6
    init_lr_high: float = 1e-2
    max_lr: float = 0.1          # clip of every coordinate's learned lr (the shipped HRNN allowed 1.0)
    lr_bound: float | None = 100.0   # each rate stays within this factor of where it started (None: off)
    max_rel_step: float | None = 0.03    # the relative trust region, on while meta-training (shipped value)
    warm_start: str | None = None    # start from this rule's weights: a shipped name ("hrnn") or a rule file

    def __post_init__(self) -> None:
        if self.max_rel_step is not None and not (self.max_rel_step > 0 and math.isfinite(self.max_rel_step)):
            raise ValueError(f"hrnn.max_rel_step={self.max_rel_step!r}; expected None or a finite number > 0")
        if not (self.max_lr > 0 and math.isfinite(self.max_lr)):
            raise ValueError(f"hrnn.max_lr={self.max_lr!r}; expected a finite number > 0")


@dataclass(frozen=True)
class ControllerConfig:
    base_lr: float = 1e-2
    hidden: int = 16
    n_knots: int = 11
    max_mult: float = 100.0
    clip: float = 5.0
    cos_gain: float = 1.0
    cos_up: float = 0.1          # grow while the running gradient/momentum cosine is above this
    cos_down: float = 0.3        # shrink while it is below minus this
    decay_start: float = 0.2     # flat to 20% of the horizon, then a cosine decay (tools/screen_default.py)
    short_decay_start: float = 0.7   # ... moving to 70% for runs of short_horizon steps or fewer
    short_horizon: int = 250


def _train_default() -> MetaTrainConfig:
    return MetaTrainConfig(iterations=400, truncation=50, truncation_sampling="task", objective="log_ratio_floored",
                           estimator="pes", sigma=0.03, n_pairs=4, meta_lr=3e-3, clip_norm=1.0,
                           val_every=10, checkpoint_every=1)


@dataclass(frozen=True)
class LoptTrainConfig:
    family: FamilyConfig = field(default_factory=FamilyConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    train: MetaTrainConfig = field(default_factory=_train_default)
    val_tasks: int = 8
    device: str = "cpu"
    rule: str = "adam-controller"    # or "hrnn": the hierarchical RNN, on the same networks
    hrnn: HRNNNetsConfig = field(default_factory=HRNNNetsConfig)

    def __post_init__(self) -> None:
        if self.rule not in ("adam-controller", "hrnn"):
            raise ValueError(f"rule={self.rule!r}; expected 'adam-controller' or 'hrnn'")


def build_controller(c: ControllerConfig) -> AdamController:
    return AdamController(base_lr=c.base_lr, hidden=c.hidden, n_knots=c.n_knots, max_mult=c.max_mult, clip=c.clip,
                          cos_gain=c.cos_gain, cos_up=c.cos_up, cos_down=c.cos_down, decay_start=c.decay_start,
                          short_decay_start=c.short_decay_start, short_horizon=c.short_horizon)


def build_family(f: FamilyConfig) -> NetFamily:
    return NetFamily(kinds=tuple(f.kinds), n_problems=f.n_problems, min_horizon=f.min_horizon,
                     max_horizon=f.max_horizon, batch_sizes=(f.batch_low, f.batch_high),
                     p_param_scale=f.p_param_scale, p_loss_scale=f.p_loss_scale,
                     heldout_objective=f.heldout_objective)


def train_config(budget: str) -> LoptTrainConfig:
    cfg = LoptTrainConfig()
    if budget == "quick":
        cfg = dataclasses.replace(
            cfg, family=dataclasses.replace(cfg.family, kinds=("mlp", "linear"), n_problems=2, max_horizon=150),
            train=dataclasses.replace(cfg.train, iterations=3, val_every=3, n_pairs=2), val_tasks=2)
    return cfg


def run_log_ratio(rule, task, g: torch.Generator) -> float:
    """The meta-objective (:func:`~learnt.meta.objectives.floored_log_ratio`) of one run of
    ``task`` for its horizon (held-out-batch losses when the task has a held-out objective);
    inf if it diverges."""
    params = task.init_params(g)
    res = unroll(task, rule, params, init_state(rule, params, task), task.batches("train", g), task.horizon,
                 differentiable=False, check=False)
    if not torch.isfinite(res.losses).all():
        return math.inf
    return float(floored_log_ratio(res.losses))


def make_validator(cfg: LoptTrainConfig, seed: int):
    fam = build_family(cfg.family)

    def validate(rule) -> float:
        rule.eval()
        try:
            scores = []
            for i in range(cfg.val_tasks):
                g = make_generator(seed, "val", i)
                scores.append(run_log_ratio(rule, fam.sample(g), g))
            return sum(scores) / len(scores)
        finally:
            rule.train()
    return validate


def build_rule(cfg: LoptTrainConfig):
    if cfg.rule == "hrnn":
        h = cfg.hrnn
        kw = dict(init_lr=h.init_lr, init_lr_range=(h.init_lr_low, h.init_lr_high), max_log_lr=math.log(h.max_lr),
                  lr_bound=h.lr_bound, max_rel_step=h.max_rel_step)
        if h.warm_start is None:
            return HierarchicalRNN(**kw)
        start = _warm_start_rule(h.warm_start)
        rule = HierarchicalRNN(**{**start.config(), **kw})   # its network sizes, this run's lr dynamics
        rule.load_state_dict(start.state_dict())
        return rule
    return build_controller(cfg.controller)


def _warm_start_rule(source: str) -> HierarchicalRNN:
    """The rule ``hrnn.warm_start`` names: a shipped rule's name, else a path to a rule file."""
    from learnt import pretrained
    from pathlib import Path
    if source in pretrained.available():
        rule = pretrained.load(source)
    elif Path(source).is_file():
        rule = load_rule(source)
    else:
        raise ValueError(f"hrnn.warm_start={source!r}; expected a shipped rule name {pretrained.available()} "
                         "or the path of a rule file")
    if not isinstance(rule, HierarchicalRNN):
        raise ValueError(f"hrnn.warm_start={source!r} is a {type(rule).__name__}; expected a HierarchicalRNN")
    return rule


def meta_train(cfg: LoptTrainConfig, ctx: RunContext):
    """Meta-train from the rule's initialisation (for the default, the hand-designed rule);
    returns the rule selected on validation (the initialisation competes)."""
    rule = build_rule(cfg).to(cfg.device)
    validate = make_validator(cfg, ctx.seed)
    init_path = ctx.out / "meta" / "init_val.json"
    if ctx.resume and init_path.exists():
        init_score = float(json.loads(init_path.read_text())["val"])
    else:
        init_score = validate(rule)      # the hand-designed start competes in the selection
        atomic_json_dump({"val": init_score}, init_path)
    init_state_dict = {k: v.clone() for k, v in rule.state_dict().items()}
    trainer = MetaTrainer(rule, build_family(cfg.family), cfg.train, seed=ctx.seed,
                          validate=validate, out_dir=ctx.out / "meta", progress=ctx.progress)
    res = trainer.train(resume=ctx.resume)
    trained_wins = res.best_score < init_score
    rule.load_state_dict(res.best_state if trained_wins else init_state_dict)
    # best.pt is the trainer's best iteration; selected.pt is what validation picks with the start competing
    save_rule(rule, ctx.out / "meta" / "selected.pt",
              {"init_val": init_score, "selected_val": min(res.best_score, init_score),
               "selected_iteration": res.best_iteration if trained_wins else 0, "iterations": res.iterations,
               "seed": ctx.seed})
    return rule.eval()
