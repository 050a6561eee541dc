"""Use a block-stacking policy: one demonstration of a layout in, an episode on a new scene out.

    >>> import learnt.imitation as im
    >>> policy = im.load_policy()                        # the shipped policy (imitation-blocks' dagger-snapshots)
    >>> ep = im.imitate(policy, "ab cd", seed=0)         # an expert demo of "ab cd", then a fresh scene
    >>> ep.success, ep.policy_positions.shape[1:]
    (True, (4, 3))
    >>> im.plot_episode(ep, "strip.png")                 # doctest: +SKIP

A layout lists towers bottom-up, separated by spaces ("ab cd": b on a, d on c). The policy
sees the demonstration once (it is not trained on it) and acts from the scene's observation;
``seed`` fixes the demonstration's scene and the new scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from learnt.imitation.block_policy import BlockStackPolicy
from learnt.imitation.blockworld import LETTERS, parse_layout
from learnt.imitation.demos import collect_blocks
from learnt.imitation.rollout import rollout_blocks
from learnt.io import read_model, save_model

KIND = "imitation-blocks-policy"
PRETRAINED = Path(__file__).resolve().parent / "pretrained"
SHIPPED = {"blocks": "blocks-snapshots.pt",          # the default: the best held-out row of imitation-blocks
           "blocks-snapshots": "blocks-snapshots.pt",
           "blocks-dagger": "blocks-dagger.pt"}      # the paper's conditioning: every frame, temporal dropout


def policy_config(policy: BlockStackPolicy) -> dict:
    """The constructor arguments that rebuild ``policy``'s architecture."""
    linears = [m for m in policy.manipulation if isinstance(m, torch.nn.Linear)]
    return {"hidden": int(policy.ids.shape[1]), "manipulation": [int(m.out_features) for m in linears[:-1]],
            "dropout": float(policy.dropout), "action_bins": int(policy.action_bins),
            "hard_picks": bool(policy.hard_picks), "demo_frames": policy.demo_frames}


def save_policy(policy: BlockStackPolicy, path: str | Path, meta: dict | None = None) -> None:
    """Write ``policy`` in the house model-file format (kind ``imitation-blocks-policy``)."""
    save_model(path, KIND, policy_config(policy), policy.state_dict(), meta)


def load_policy(name_or_path: str | Path = "blocks", device: str = "cpu") -> BlockStackPolicy:
    """A shipped policy by name or a file written by :func:`save_policy`; in eval mode.

    ``"blocks"`` (an alias of ``"blocks-snapshots"``) is DAgger on the 140 training layouts,
    conditioned on the demo's frame after each release of a block (92.2% over all stages on
    held-out layouts in the README's ``imitation-blocks``); ``"blocks-dagger"`` is the same
    training conditioned on every frame with temporal dropout, the paper's architecture (77.7%)."""
    if str(name_or_path) in SHIPPED:
        path = PRETRAINED / SHIPPED[str(name_or_path)]
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"policy {str(name_or_path)!r}: not a file; expected a path or one of {sorted(SHIPPED)}")
    m = read_model(path, kinds=[KIND])
    c = m["config"]
    policy = BlockStackPolicy(c["hidden"], tuple(c["manipulation"]), c["dropout"], c["action_bins"], c["hard_picks"],
                              c.get("demo_frames", "all"))   # files before demo_frames: all frames
    policy.load_state_dict(m["state_dict"])
    return policy.to(device).eval()


@dataclass
class Episode:
    """One imitation: the demonstration and the policy's episode, block positions per step
    (T, n_blocks, 3); ``success`` of the policy's episode (every tower built as in ``layout``)."""

    layout: str
    success: bool
    demo_positions: np.ndarray
    policy_positions: np.ndarray


def imitate(policy: BlockStackPolicy, layout: str, *, seed: int = 0, noise: float = 0.1,
            device: str = "cpu", rng: np.random.Generator | None = None) -> Episode:
    """Record one scripted (noisy) expert demonstration of ``layout``, then roll ``policy`` out
    conditioned on it on a new scene of the same blocks (``rng``, when given, replaces ``seed``)."""
    parse_layout(layout)   # a clear error for a malformed layout
    rng = np.random.default_rng(seed) if rng is None else rng
    traces: list = []
    demo = collect_blocks(rng, [layout], [0], noise, traces=traces)
    res = rollout_blocks(policy, demo, [layout], rng, device, record=True)
    return Episode(layout, bool(res.success[0]), np.array([p for p, _ in traces[0]]), res.positions[0])


def episode_strip(ep: Episode, frames: int = 6) -> dict:
    """The positions at ``frames`` evenly spaced moments of the demo and of the episode."""
    pick = lambda n: np.linspace(0, n - 1, frames).round().astype(int)  # noqa: E731
    d, p = pick(len(ep.demo_positions)), pick(len(ep.policy_positions))
    return {"layout": ep.layout, "success": ep.success, "demo": ep.demo_positions[d].tolist(),
            "demo_steps": d.tolist(), "policy": ep.policy_positions[p].tolist(), "policy_steps": p.tolist()}


def plot_episode(ep: Episode | dict, path: str | Path, title: str | None = None) -> Path:
    """Render the demo and the episode as a strip of top and side views (PNG at ``path``);
    ``ep`` is an :class:`Episode` or an :func:`episode_strip` dict."""
    from matplotlib.patches import Rectangle

    from learnt.plotting import plt

    strip = episode_strip(ep) if isinstance(ep, Episode) else ep
    outcome = "(success)" if strip["success"] else "(failure)"
    rows = [("demo", "top", "demo, top view"), ("demo", "side", "demo, side view"),
            ("policy", "top", f"policy {outcome}, top"), ("policy", "side", f"policy {outcome}, side")]
    n = len(strip["demo"])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.9 * n, 1.9 * len(rows)), dpi=100, squeeze=False)
    for r, (key, view, label) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            pos = np.array(strip[key][c])
            for b in np.argsort(pos[:, 2]) if view == "top" else np.argsort(-pos[:, 1]):
                x, y, z = pos[b]
                u, v = (x, y) if view == "top" else (x, z)   # side view looks along +y, nearer blocks in front
                ax.add_patch(Rectangle((u - 0.5, v - 0.5), 1, 1, color=f"C{b % 10}", alpha=0.9, ec="k", lw=0.6))
                ax.text(u, v, LETTERS[b], ha="center", va="center", fontsize=7, color="w")
            ax.set_xlim(-5.5, 5.5)
            ax.set_ylim((-5.5, 5.5) if view == "top" else (0, 7))
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r % 2 == 0:
                ax.set_title(f"t={strip[key + '_steps'][c]}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=7)
    fig.suptitle(title or f"layout '{strip['layout']}' (towers listed bottom-up)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


@torch.no_grad()
def success_rate(policy: BlockStackPolicy, layout: str, scenes: int = 20, seed: int = 0) -> float:
    """Fraction of ``scenes`` imitations of ``layout`` (seeds ``seed .. seed + scenes - 1``) that succeed."""
    if scenes < 1:
        raise ValueError(f"scenes={scenes}; expected >= 1")
    return float(np.mean([imitate(policy, layout, seed=seed + i).success for i in range(scenes)]))
