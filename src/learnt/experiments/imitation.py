"""``imitation-particle`` and ``imitation-blocks``: one-shot imitation (Duan et al. 2017).

Particle reaching: the three demo-conditioned architectures of the paper (plain LSTM, LSTM
with attention, final state with attention), trained by behaviour cloning on demo pairs of
target colours 0-7, tested on unseen demos x unseen configurations, by number of landmarks,
for training colours and for the held-out colours 8 and 9.

Block stacking: the demonstration/context/manipulation policy trained by behaviour cloning
and by DAgger (branching off the BC run, same total iterations) on the 140 training layouts,
tested by number of stages on training and on the 43 held-out layouts, each episode with an
unseen demo and an unseen scene (the same demos and scenes for every method); architecture
ablations (``ABLATIONS``) trained the same way from scratch; held-out success versus updates
from the trainers' snapshots.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from learnt.errors import CheckpointError
from learnt.experiments.base import Experiment, RunContext
from learnt.experiments.results import stat_row
from learnt.imitation import particle as P
from learnt.imitation.api import episode_strip, imitate, plot_episode
from learnt.imitation.block_expert import benchmark_tasks
from learnt.imitation.block_policy import DEMO_FRAMES, BlockLoss, BlockStackPolicy
from learnt.imitation.blockworld import layout_stages
from learnt.imitation.demos import Trajectories, collect_blocks, collect_particle, load_or_collect
from learnt.imitation.particle_policies import ARCHITECTURES, make_particle_policy
from learnt.imitation.rollout import rollout_blocks, rollout_particle
from learnt.imitation.training import ImitationTrainConfig, ImitationTrainer, mse_loss, snapshot_files
from learnt.io import safe_torch_load
from learnt.seeding import derive_seed

PAPER_PARTICLE_10 = {"lstm": 0.505, "lstm-attention": 0.859, "final-attention": 1.0}
PAPER_DAGGER_TEST = {2: 0.949, 4: 0.770, 5: 0.659, 6: 0.506, 7: 0.365, 8: 0.180}


def _rng(seed: int, split: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, split, *extra))


# ============================================================================ particles
@dataclass(frozen=True)
class ParticleConfig:
    architectures: tuple[str, ...] = ARCHITECTURES
    train_colours: int = 8            # targets 0..train_colours-1 train; the rest are held out
    demos: int = 20000
    noise: float = 0.1
    hidden: int = 64                  # the attention architectures
    train: ImitationTrainConfig = field(default_factory=lambda: ImitationTrainConfig(
        iterations=2000, batch_pairs=32, states_per_pair=16, checkpoint_every=250, log_every=100,
        snapshot_every=250))
    # The plain LSTM must carry the whole demonstration in its state (nothing attends back to
    # it), and at the attention rows' budget it does not learn at all (0.5% at 10 landmarks):
    # it gets its own, larger network and budget (the README's imitation-particle note).
    lstm_hidden: int = 256
    lstm_train: ImitationTrainConfig = field(default_factory=lambda: ImitationTrainConfig(
        iterations=11000, batch_pairs=128, states_per_pair=16, checkpoint_every=250, log_every=500,
        snapshot_every=1000))
    landmarks: tuple[int, ...] = (2, 4, 6, 8, 10)
    eval_episodes: int = 200          # per (landmark count, split, architecture)
    curve_episodes: int = 100         # per split at the most landmarks, for each snapshot (0: no curves)
    device: str = "cpu"

    def __post_init__(self) -> None:
        for a in self.architectures:
            if a not in ARCHITECTURES:
                raise ValueError(f"architecture {a!r}: expected some of {list(ARCHITECTURES)}")
        if not 1 <= self.train_colours < P.N_COLOURS:
            raise ValueError(f"train_colours={self.train_colours}: expected 1 to {P.N_COLOURS - 1}")
        for k in self.landmarks:
            P.check_landmarks(k)
        if self.curve_episodes < 0:
            raise ValueError(f"curve_episodes={self.curve_episodes}; expected >= 0 (0: no curves)")

    @property
    def splits(self) -> dict[str, np.ndarray]:
        """Target colours of the training and the held-out tasks."""
        return {"train": np.arange(self.train_colours), "held-out": np.arange(self.train_colours, P.N_COLOURS)}

    def budget(self, arch: str) -> tuple[int, ImitationTrainConfig]:
        """(hidden size, training config) of one architecture."""
        return (self.lstm_hidden, self.lstm_train) if arch == "lstm" else (self.hidden, self.train)


def particle_config(budget: str) -> ParticleConfig:
    cfg = ParticleConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, demos=400, eval_episodes=50, landmarks=(2, 6, 10), lstm_hidden=64,
                                  curve_episodes=10,
                                  train=dataclasses.replace(cfg.train, iterations=200, checkpoint_every=100,
                                                            snapshot_every=100),
                                  lstm_train=dataclasses.replace(cfg.lstm_train, iterations=200, batch_pairs=32,
                                                                 checkpoint_every=100, log_every=100,
                                                                 snapshot_every=100))
    return cfg


def _particle_demos(cfg: ParticleConfig, ctx: RunContext) -> Trajectories:
    def collect():
        rng = _rng(ctx.seed, "train", 0)
        targets = rng.integers(0, cfg.train_colours, cfg.demos)
        k = rng.integers(P.MIN_LANDMARKS, P.MAX_LANDMARKS + 1, cfg.demos)
        return collect_particle(rng, targets, k, cfg.noise)
    meta = {"kind": "particle", "seed": ctx.seed, "demos": cfg.demos, "noise": cfg.noise, "colours": cfg.train_colours}
    return load_or_collect(ctx.out / "data" / "particle_demos.npz", meta, collect)


def particle_meta_train(cfg: ParticleConfig, ctx: RunContext) -> dict[str, torch.nn.Module]:
    demos = _particle_demos(cfg, ctx)
    out = {}
    for arch in cfg.architectures:
        hidden, train = cfg.budget(arch)
        pol = make_particle_policy(arch, hidden).to(cfg.device)
        tr = ImitationTrainer(pol, demos, mse_loss, train, seed=ctx.seed, out_dir=ctx.out / "meta" / arch,
                              progress=ctx.progress, device=cfg.device)
        tr.train(resume=ctx.resume and tr.checkpoint_path.is_file())   # --resume: what has a checkpoint
        out[arch] = pol
    return out


def particle_evaluate(cfg: ParticleConfig, ctx: RunContext, policies: dict):
    rows, n, demo_ok = [], cfg.eval_episodes, {}
    for split, colours in cfg.splits.items():
        for k in cfg.landmarks:
            rng = _rng(ctx.seed, "test", k, 0 if split == "train" else 1)
            targets = rng.choice(colours, n)
            ks = np.full(n, k)
            demos = collect_particle(rng, targets, ks, cfg.noise)      # unseen demos ...
            lm, present, start = P.sample_configs(rng, ks, targets)    # ... of unseen configurations
            demo_ok.setdefault(split, []).append(demos.success.mean())
            for arch, pol in policies.items():
                ok = rollout_particle(pol, demos, lm, present, start, cfg.device).success
                extra = {"landmarks": k, "split": split}
                if split == "held-out" and k == 10 and arch in PAPER_PARTICLE_10:
                    extra["paper"] = PAPER_PARTICLE_10[arch]
                rows.append(stat_row(arch, f"{split} tasks, {k} landmarks", "success", ok.astype(float), **extra))
    extra = {f"{s}_demo_success": float(np.mean(v)) for s, v in demo_ok.items()}
    extra["curves"] = _particle_curves(cfg, ctx, list(policies))
    return rows, {}, extra


def _particle_curves(cfg: ParticleConfig, ctx: RunContext, archs: list[str]) -> dict:
    """Success at the most landmarks versus updates, on training and on held-out colours, from
    the snapshots each architecture's trainer wrote (``curve_episodes`` unseen demos and
    configurations per split, the same for every snapshot and architecture). Keys
    ``"ARCH, SPLIT colours"``."""
    if not cfg.curve_episodes:
        return {}
    k, n = max(cfg.landmarks), cfg.curve_episodes
    sets = {}
    for split, colours in cfg.splits.items():
        rng = _rng(ctx.seed, "test", k, 2 if split == "train" else 3)
        targets, ks = rng.choice(colours, n), np.full(n, k)
        sets[split] = (collect_particle(rng, targets, ks, cfg.noise), *P.sample_configs(rng, ks, targets))
    curves: dict[str, dict] = {}
    for arch in archs:
        snaps = snapshot_files(ctx.out / "meta" / arch)
        if not snaps:
            continue
        pol = make_particle_policy(arch, cfg.budget(arch)[0]).to(cfg.device)
        cs = {split: {"arch": arch, "split": split, "landmarks": k, "episodes": n, "updates": [], "mean": [],
                      "ci95": []} for split in sets}
        for updates, path in snaps:
            pol.load_state_dict(safe_torch_load(path)["policy"])
            for split, (demos, lm, present, start) in sets.items():
                ok = rollout_particle(pol.eval(), demos, lm, present, start, cfg.device).success
                r = stat_row(arch, "curve", "success", ok.astype(float))
                for key, v in (("updates", updates), ("mean", r["mean"]), ("ci95", r["ci95"])):
                    cs[split][key].append(v)
        curves.update({f"{arch}, {split} colours": c for split, c in cs.items()})
    return curves


def particle_plot(results: dict, out: Path) -> list[Path]:
    from learnt.plotting import plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for i, arch in enumerate(dict.fromkeys(r["method"] for r in results["rows"])):
        for split, style in (("held-out", "-"), ("train", ":")):
            rs = [r for r in results["rows"] if r["method"] == arch and r["split"] == split]
            x = [r["landmarks"] for r in rs]
            y = np.array([r["mean"] for r in rs])
            ci = np.nan_to_num(np.array([r["ci95"] if r["ci95"] is not None else 0 for r in rs], float))
            ax.errorbar(x, y, yerr=ci, fmt=style + "o", color=f"C{i}", capsize=3, ms=4,
                        label=f"{arch} ({split} colours)")
        if arch in PAPER_PARTICLE_10:
            ax.plot([10], [PAPER_PARTICLE_10[arch]], "*", color=f"C{i}", ms=12, mec="k")
    ax.set_xlabel("number of landmarks")
    ax.set_ylabel("success rate (mean ± 95% CI)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("Particle reaching: unseen demos x unseen configurations (★ paper, 10 landmarks)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "particle_success.png"
    fig.savefig(path)
    plt.close(fig)
    paths = [path]
    if results.get("curves"):
        paths.append(_plot_particle_curves(results["curves"], out / "particle_curves.png"))
    return paths


def _plot_particle_curves(curves: dict, path: Path) -> Path:
    from learnt.plotting import plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    archs = list(dict.fromkeys(c["arch"] for c in curves.values()))
    for c in curves.values():
        m, ci = np.array(c["mean"], float), np.nan_to_num(np.array(c["ci95"], float))
        colour = f"C{archs.index(c['arch'])}"
        ax.plot(c["updates"], m, ("o-" if c["split"] == "held-out" else "o:"), ms=3, color=colour,
                label=f"{c['arch']} ({c['split']} colours)")
        ax.fill_between(c["updates"], m - ci, m + ci, color=colour, alpha=0.12)
    first = next(iter(curves.values()))
    ax.set_xscale("log")
    ax.set_xlabel("updates (each architecture's own batch size; log scale)")
    ax.set_ylabel(f"success at {first['landmarks']} landmarks (mean ± 95% CI)")
    return _save_curve_plot(fig, ax, path, f"Particle reaching: success during training ({first['episodes']} "
                                           "episodes per point)")


def _save_curve_plot(fig, ax, path: Path, title: str) -> Path:
    from learnt.plotting import plt

    ax.set_ylim(-0.02, 1.05)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def particle_load_trained(cfg: ParticleConfig, path: str) -> dict:
    """Policies from a run folder's ``meta/<arch>/checkpoint.pt``."""
    out = {}
    for arch in cfg.architectures:
        pol = make_particle_policy(arch, cfg.budget(arch)[0])
        pol.load_state_dict(safe_torch_load(Path(path) / "meta" / arch / "checkpoint.pt")["policy"])
        out[arch] = pol.eval()
    return out


IMITATION_PARTICLE = Experiment(
    name="imitation-particle",
    description="One-shot imitation, particle reaching: LSTM / LSTM+attention / final-state attention (Duan 2017)",
    config=particle_config, meta_train=particle_meta_train, evaluate=particle_evaluate, plot=particle_plot,
    load_trained=particle_load_trained,
)


# ============================================================================ blocks
# Architecture variants trained beside the main policy, each from scratch with the main
# policy's training (DAgger when dagger_rounds > 0): the paper's comparison of temporal dropout
# and of its conditioning variants (the demo's final frame only; a snapshot at the end of each
# stage), and our auxiliary pick loss (with hard picks) against the paper's plain behaviour cloning.
ABLATIONS = {
    "no-temporal-dropout": {"temporal_dropout": 0.0},
    "no-pick-loss": {"pick_weight": 0.0, "hard_picks": False},
    "final-state": {"demo_frames": "final"},
    "snapshots": {"demo_frames": "snapshots"},
}


@dataclass(frozen=True)
class BlocksConfig:
    demos_per_task: int = 8
    noise: float = 0.1
    max_stages: int = 8               # use benchmark layouts with at most this many stages
    hidden: int = 64
    manipulation: tuple[int, ...] = (256, 256)
    temporal_dropout: float = 0.95
    pick_weight: float = 1.0          # 0 = plain behaviour cloning as in the paper
    action_bins: int = 0              # 0 = regress the motion (MSE); > 0: classify over bins
    hard_picks: bool = True           # context uses the most attended blocks' positions (needs pick_weight > 0)
    demo_frames: str = "all"          # the demo frames the policy sees: "all" (temporal dropout), "final", "snapshots"
    train: ImitationTrainConfig = field(default_factory=lambda: ImitationTrainConfig(
        iterations=12000, batch_pairs=32, states_per_pair=8, lr=2e-3, checkpoint_every=100, log_every=50,
        snapshot_every=1000))
    dagger_rounds: int = 2
    dagger_episodes: int = 280
    # The full budget ablates the pick loss (the paper's plain behaviour cloning, soft
    # attention) over the main method's whole schedule, and temporal dropout over its first
    # 6,000 updates (behaviour cloning to 4,000, the first DAgger round): without temporal
    # dropout every demo frame is embedded and attended (up to 220 for 8 stages against at
    # most 11), ~0.75 s per update on 1 thread with the packed path of
    # BlockStackPolicy.encode_demo against 0.13 s. The curves compare it with the main
    # method at equal updates; the main method's curve is flat from ~5,000 updates. The
    # conditioning variants see 1 to 9 frames and train for the whole schedule.
    ablations: tuple[str, ...] = ("no-pick-loss", "no-temporal-dropout", "final-state", "snapshots")  # ABLATIONS keys
    # Updates an ablation is trained for, as "NAME=N" (a bare "N": every ablation not named),
    # on the main method's schedule (0 or not given: all of it). A prefix of that schedule, so
    # a later run with a larger N resumes the same training.
    ablation_updates: tuple[str, ...] = ("no-temporal-dropout=6000",)
    eval_train_configs: int = 10      # scenes (each with an unseen demo) per training layout
    eval_test_configs: int = 100      # ... per held-out layout (the paper's 100)
    curve_test_configs: int = 5       # ... per held-out layout for each snapshot of the curves
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.demos_per_task < 2:
            raise ValueError(f"demos_per_task={self.demos_per_task}; expected >= 2 (pairs of demos)")
        if self.hard_picks and self.pick_weight <= 0:
            raise ValueError(f"hard_picks needs pick_weight > 0 (got {self.pick_weight}): argmax attention has no gradient")
        if self.demo_frames not in DEMO_FRAMES:
            raise ValueError(f"demo_frames={self.demo_frames!r}; expected one of {DEMO_FRAMES}")
        if not 1 <= self.max_stages <= 8:
            raise ValueError(f"max_stages={self.max_stages}; expected 1 to 8")
        for name in self.ablations:
            if name not in ABLATIONS:
                raise ValueError(f"ablation {name!r}; expected one of {sorted(ABLATIONS)}")
        self._ablation_budgets()   # validates ablation_updates
        if self.curve_test_configs < 0:
            raise ValueError(f"curve_test_configs={self.curve_test_configs}; expected >= 0 (0: no curves)")

    @property
    def main_method(self) -> str:
        return "dagger" if self.dagger_rounds else "bc"

    def method_config(self, method: str) -> "BlocksConfig":
        """The config a method's policy is built with: an ablation's method is ``MAIN-NAME``."""
        for name in self.ablations:
            if method == f"{self.main_method}-{name}":
                return dataclasses.replace(self, ablations=(), **ABLATIONS[name])
        return self

    def _ablation_budgets(self) -> dict[str | None, int]:
        """``ablation_updates`` as ``{name or None (the rest): updates}``."""
        out: dict[str | None, int] = {}
        for item in self.ablation_updates:
            name, _, n = item.rpartition("=")
            if (name and name not in ABLATIONS) or not n.strip().isdigit() or (name or None) in out:
                raise ValueError(f"ablation_updates item {item!r}: expected NAME=N with NAME one of "
                                 f"{sorted(ABLATIONS)} (once each) or a bare N, N an integer >= 0")
            out[name or None] = int(n)
        return out

    def updates(self, method: str) -> int:
        """Updates ``method`` is trained for: the main schedule, or an ablation's share of it."""
        full = self.train.iterations
        for name in self.ablations:
            if method == f"{self.main_method}-{name}":
                budgets = self._ablation_budgets()
                u = budgets.get(name, budgets.get(None, 0))
                return min(u, full) if u else full
        return full

    @property
    def methods(self) -> tuple[str, ...]:
        base = ("bc", "dagger") if self.dagger_rounds else ("bc",)
        return base + tuple(f"{self.main_method}-{n}" for n in self.ablations)


def blocks_config(budget: str) -> BlocksConfig:
    cfg = BlocksConfig()
    if budget == "quick":
        cfg = dataclasses.replace(cfg, demos_per_task=3, max_stages=3, dagger_rounds=1, dagger_episodes=40,
                                  eval_train_configs=2, eval_test_configs=4, curve_test_configs=1,
                                  train=dataclasses.replace(cfg.train, iterations=100, checkpoint_every=50,
                                                            snapshot_every=50))
    return cfg


def _tasks(cfg: BlocksConfig) -> tuple[list[str], list[str]]:
    train, test = benchmark_tasks()
    keep = lambda ls: [l for l in ls if layout_stages(l) <= cfg.max_stages]  # noqa: E731
    return keep(train), keep(test)


def _block_demos(cfg: BlocksConfig, ctx: RunContext, train: list[str]) -> Trajectories:
    def collect():
        lays = [l for l in train for _ in range(cfg.demos_per_task)]
        ids = [i for i in range(len(train)) for _ in range(cfg.demos_per_task)]
        return collect_blocks(_rng(ctx.seed, "train", 0), lays, ids, cfg.noise)
    meta = {"kind": "blocks", "seed": ctx.seed, "tasks": train, "per_task": cfg.demos_per_task, "noise": cfg.noise}
    return load_or_collect(ctx.out / "data" / "block_demos.npz", meta, collect)


def _block_policy(cfg: BlocksConfig, method: str | None = None) -> BlockStackPolicy:
    c = cfg.method_config(method) if method is not None else cfg
    return BlockStackPolicy(c.hidden, c.manipulation, c.temporal_dropout, c.action_bins, c.hard_picks,
                            c.demo_frames).to(c.device)


def blocks_meta_train(cfg: BlocksConfig, ctx: RunContext) -> dict[str, torch.nn.Module]:
    train, _ = _tasks(cfg)
    demos = _block_demos(cfg, ctx, train)
    loss = BlockLoss(cfg.pick_weight)

    def collect(policy, k, rng):
        idx = rng.integers(0, len(train), cfg.dagger_episodes)
        cond = np.array([rng.choice(np.flatnonzero(demos.task == i)) for i in idx])
        return rollout_blocks(policy, demos.select(cond), [train[i] for i in idx], rng, cfg.device, label=True).visited

    bc = ImitationTrainer(_block_policy(cfg), demos, loss, cfg.train, seed=ctx.seed, out_dir=ctx.out / "meta" / "bc",
                          progress=ctx.progress, device=cfg.device)
    dcfg = dataclasses.replace(cfg.train, dagger_rounds=cfg.dagger_rounds, dagger_episodes=cfg.dagger_episodes)
    dagger = ImitationTrainer(_block_policy(cfg), demos, loss, dcfg, seed=ctx.seed, out_dir=ctx.out / "meta" / "dagger",
                              progress=ctx.progress, device=cfg.device, collect=collect)
    branch = dagger._phase_ends()[0] if cfg.dagger_rounds else cfg.train.iterations
    bc.train(resume=ctx.resume and bc.checkpoint_path.is_file(), until=branch)
    if cfg.dagger_rounds:
        if ctx.resume and dagger.checkpoint_path.is_file():
            dagger.train(resume=True)
        else:
            dagger.start_from(bc)
            dagger.train()
    bc.train(resume=True)
    out = {"bc": bc.policy, "dagger": dagger.policy} if cfg.dagger_rounds else {"bc": bc.policy}
    for method in cfg.methods[len(out):]:     # the ablations, each trained from scratch like the main method
        mcfg = cfg.method_config(method)
        tr = ImitationTrainer(_block_policy(cfg, method), demos, BlockLoss(mcfg.pick_weight),
                              dcfg if cfg.dagger_rounds else cfg.train, seed=ctx.seed, out_dir=ctx.out / "meta" / method,
                              progress=ctx.progress, device=cfg.device, collect=collect if cfg.dagger_rounds else None)
        tr.train(resume=ctx.resume and tr.checkpoint_path.is_file(), until=cfg.updates(method))
        if tr.iteration != cfg.updates(method):
            raise CheckpointError(f"{method}: its checkpoint under {ctx.out} is at {tr.iteration} updates, past the "
                                  f"{cfg.updates(method)} this config trains it for; run without --resume to "
                                  "train it anew, or use another --out")
        out[method] = tr.policy
    return out


def blocks_evaluate(cfg: BlocksConfig, ctx: RunContext, policies: dict):
    train, test = _tasks(cfg)
    rows, extra = [], {}
    for split, lays, per in (("train", train, cfg.eval_train_configs), ("held-out", test, cfg.eval_test_configs)):
        episodes = [l for l in lays for _ in range(per)]
        stages = np.array([layout_stages(l) for l in episodes])
        demos = collect_blocks(_rng(ctx.seed, "test", 0 if split == "train" else 1), episodes,
                               list(range(len(episodes))), cfg.noise)
        extra[f"{split}_demo_success"] = float(demos.success.mean())
        for method, pol in policies.items():
            ok = rollout_blocks(pol, demos, episodes, _rng(ctx.seed, "test", 2 if split == "train" else 3),
                                cfg.device).success.astype(float)
            u = cfg.updates(method)
            rows.append(stat_row(method, f"{split} tasks, all", "success", ok, split=split, stages="all", updates=u))
            for s in np.unique(stages):
                e = {"split": split, "stages": int(s), "tasks": len({l for l in lays if layout_stages(l) == s}),
                     "updates": u}
                if split == "held-out" and method == "dagger" and int(s) in PAPER_DAGGER_TEST:
                    e["paper"] = PAPER_DAGGER_TEST[int(s)]
                rows.append(stat_row(method, f"{split} tasks, {int(s)} stages", "success", ok[stages == s], **e))
    extra["curves"] = _curves(cfg, ctx, list(policies), test)
    extra["strip"] = _strip(cfg, ctx, policies.get("dagger", policies["bc"]), test)
    return rows, {}, extra


def _curves(cfg: BlocksConfig, ctx: RunContext, methods: list[str], test: list[str]) -> dict:
    """Held-out success versus updates, from the snapshots each method's trainer wrote
    (``curve_test_configs`` scenes per held-out layout, the same for every snapshot and method)."""
    if not cfg.curve_test_configs:
        return {}
    episodes = [l for l in test for _ in range(cfg.curve_test_configs)]
    demos = collect_blocks(_rng(ctx.seed, "test", 5), episodes, list(range(len(episodes))), cfg.noise)
    curves = {}
    for method in methods:
        snaps = snapshot_files(ctx.out / "meta" / method)
        if not snaps:
            continue
        pol = _block_policy(cfg, method)
        c: dict[str, list] = {"updates": [], "mean": [], "ci95": []}
        for updates, path in snaps:
            pol.load_state_dict(safe_torch_load(path)["policy"])
            ok = rollout_blocks(pol.eval(), demos, episodes, _rng(ctx.seed, "test", 6), cfg.device).success
            r = stat_row(method, "curve", "success", ok.astype(float))
            c["updates"].append(updates)
            c["mean"].append(r["mean"])
            c["ci95"].append(r["ci95"])
        curves[method] = {**c, "episodes": len(episodes)}
    return curves


def _strip(cfg: BlocksConfig, ctx: RunContext, policy, test: list[str], frames: int = 6) -> dict:
    """Block positions at a few moments of one held-out demo and of the policy's episode."""
    lay = min(test, key=lambda l: (abs(layout_stages(l) - 3), l))
    ep = imitate(policy, lay, noise=cfg.noise, device=cfg.device, rng=_rng(ctx.seed, "test", 4))
    return episode_strip(ep, frames)


def blocks_plot(results: dict, out: Path) -> list[Path]:
    from learnt.plotting import plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    rows = [r for r in results["rows"] if r["stages"] != "all"]
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        for split, style in (("held-out", "-"), ("train", ":")):
            if split == "train" and method not in ("bc", "dagger"):
                continue   # the ablations' training-layout rows are in the table; the plot stays readable
            rs = [r for r in rows if r["method"] == method and r["split"] == split]
            ci = np.nan_to_num(np.array([r["ci95"] if r["ci95"] is not None else 0 for r in rs], float))
            ax.errorbar([r["stages"] for r in rs], [r["mean"] for r in rs], yerr=ci, fmt=style + "o", color=f"C{i}",
                        capsize=3, ms=4, label=f"{method} ({split} tasks)")
    ax.plot(list(PAPER_DAGGER_TEST), list(PAPER_DAGGER_TEST.values()), "k*--", ms=9, lw=0.8, label="paper DAgger (test)")
    ax.set_xlabel("number of stages")
    ax.set_ylabel("success rate (mean ± 95% CI)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("Block stacking: unseen demos x unseen scenes", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [out / "blocks_success.png"]
    fig.savefig(paths[0])
    plt.close(fig)
    if results.get("strip"):
        paths.append(_plot_strip(results["strip"], out / "blocks_episode_strip.png"))
    if results.get("curves"):
        paths.append(_plot_curves(results, out / "blocks_curves.png"))
    return paths


def _plot_curves(results: dict, path: Path) -> Path:
    from learnt.plotting import plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    cfg = results.get("config", {})
    for i, (method, c) in enumerate(results["curves"].items()):
        m, ci = np.array(c["mean"], float), np.nan_to_num(np.array(c["ci95"], float))
        ax.plot(c["updates"], m, "o-", ms=3, color=f"C{i}", label=method)
        ax.fill_between(c["updates"], m - ci, m + ci, color=f"C{i}", alpha=0.15)
    rounds, iters = cfg.get("dagger_rounds", 0), cfg.get("train", {}).get("iterations")
    for k in range(rounds if iters else 0):
        ax.axvline(round(iters * (k + 1) / (rounds + 1)), color="0.6", lw=0.8, ls=":")
    n = next(iter(results["curves"].values()))["episodes"]
    ax.set_xlabel("updates (dotted: DAgger rounds)")
    ax.set_ylabel("held-out success, all stages (mean ± 95% CI)")
    return _save_curve_plot(fig, ax, path, f"Block stacking: held-out success during training ({n} episodes per point)")


def _plot_strip(strip: dict, path: Path) -> Path:
    return plot_episode(strip, path, f"held-out layout '{strip['layout']}' (towers listed bottom-up)")


def blocks_load_trained(cfg: BlocksConfig, path: str) -> dict:
    """Policies from a run folder's ``meta/METHOD/checkpoint.pt``, for every method of ``cfg``
    (BC, DAgger and the ablations)."""
    out = {}
    for name in cfg.methods:
        pol = _block_policy(cfg, name)
        pol.load_state_dict(safe_torch_load(Path(path) / "meta" / name / "checkpoint.pt")["policy"])
        out[name] = pol.eval()
    return out


IMITATION_BLOCKS = Experiment(
    name="imitation-blocks",
    description="One-shot imitation, block stacking: demo/context/manipulation networks, BC vs DAgger (Duan 2017)",
    config=blocks_config, meta_train=blocks_meta_train, evaluate=blocks_evaluate, plot=blocks_plot,
    load_trained=blocks_load_trained,
)
