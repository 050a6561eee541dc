"""The block-stacking policy pi(a | o, demo) of Duan et al. (2017, appendix), scaled down for CPU.

Three parts, as in the paper:

- **Demonstration network.** Temporal dropout keeps a random ``1 - p`` share of the demo's
  frames while training (``p = 0.95`` in the paper); at test time evenly spaced frames at
  the same rate (always including the last). The paper's conditioning variants replace
  this choice of frames (``demo_frames``): ``"final"`` keeps the demo's last frame only,
  ``"snapshots"`` the frame after each release of a block (the end of each stage) and the
  last. Each kept frame is embedded per block (a
  learned block-identity embedding plus its position relative to the gripper and the
  gripper state), refined by *neighbourhood attention* over blocks (scores from the blocks'
  embeddings plus their relative position; the read-out carries relative positions), then
  by attention over time, per block.
- **Context network.** The current observation is embedded the same way; its summary
  attends over the demo's frames, the attended demo embedding is joined to each block,
  another neighbourhood attention relates the blocks, and two attention heads over blocks
  select the block to move and the block to put it on. The context is their positions
  (relative to the gripper), the gripper state and a pooled summary: a fixed size for any
  number of blocks.
- **Manipulation network.** An MLP (256-256 as in the paper) maps the context to the
  action: gripper motion (3) and a grip logit. With ``action_bins > 0`` each motion axis is
  a classification over that many evenly spaced values in [-1, 1] (cross-entropy), which
  keeps the expert's sharp, saturated moves sharp; ``action_bins = 0`` regresses (MSE).

Shapes: ``demo (N, T, 32)``, ``time_mask (N, T)``, ``entities (N, 10)`` (present blocks),
``obs (N, S, 32)`` -> raw outputs ``(N, S, 4)`` (or ``(N, S, 3 * action_bins + 1)``);
:meth:`BlockStackPolicy.command` turns them into executable actions ``(N, S, 4)``. Blocks
are padded to 10 and masked.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnt.imitation.blockworld import MAX_BLOCKS

POS_SCALE = 4.0
_NEG = -1e9
# Demos with more kept frames than this take the packed, fused path of
# BlockStackPolicy.encode_demo; shorter ones (temporal dropout on: at most 11 frames) keep the
# explicit path the shipped policy was trained with, so its numbers do not move by rounding.
PACKED_MIN_FRAMES = 32


def _masked_mean(x: Tensor, mask: Tensor, dim: int) -> Tensor:
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp(min=1.0)


class NeighbourhoodAttention(nn.Module):
    """Each block attends over all blocks; scores use embeddings and relative positions.

    ``h (..., B, H)``, ``pos (..., B, 3)``, ``mask (..., B)`` -> ``(..., B, H)`` (residual).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.geo = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
        self.out = nn.Sequential(nn.Linear(hidden + 3, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: Tensor, pos: Tensor, mask: Tensor) -> Tensor:
        rel = pos.unsqueeze(-3) - pos.unsqueeze(-2)                     # (..., i, j, 3) = p_j - p_i
        scores = torch.einsum("...ih,...jh->...ij", self.q(h), self.k(h)) / math.sqrt(h.shape[-1])
        scores = scores + self.geo(rel).squeeze(-1)
        scores = scores.masked_fill(~mask.unsqueeze(-2), _NEG)
        a = torch.softmax(scores, -1)
        read = torch.cat([a @ self.v(h), torch.einsum("...ij,...ijc->...ic", a, rel)], -1)
        return self.norm(h + self.out(read))


def temporal_dropout_frames(time_mask: Tensor, p: float, generator: torch.Generator | None, train: bool):
    """Frame indices ``(N, F)`` and their mask ``(N, F)`` kept from each demo.

    Training: each valid frame is kept with probability ``1 - p`` (at least one). Test: the
    same number of evenly spaced frames, ending at the last valid frame.
    """
    n, t = time_mask.shape
    lengths = time_mask.long().sum(1).clamp(min=1)
    keep_n = torch.clamp(torch.round((1 - p) * lengths.double()).long(), min=1)
    if train:
        u = torch.rand(n, t, generator=generator).to(time_mask.device)
        u = u.masked_fill(~time_mask.bool(), 2.0)
        keep = u < (1 - p)
        none = ~keep.any(1)
        if none.any():  # keep one random valid frame where dropout removed all
            first = torch.argmin(u, 1)
            keep[none, first[none]] = True
        keep_n = keep.sum(1)
        f = int(keep_n.max())
        key = (~keep).long() * t + torch.arange(t, device=keep.device)[None]   # kept frames first, in time order
        idx = torch.argsort(key, 1)[:, :f]
    else:
        f = int(keep_n.max())
        j = torch.arange(f, device=time_mask.device)[None].double()
        frac = (j + 1) / keep_n[:, None].double()
        idx = torch.clamp(torch.ceil(frac * lengths[:, None].double()).long() - 1, 0, t - 1)
        idx = torch.minimum(idx, (lengths - 1)[:, None])
    fmask = torch.arange(f, device=time_mask.device)[None] < keep_n[:, None]
    return idx, fmask


DEMO_FRAMES = ("all", "final", "snapshots")
HOLDING = -1   # observation index of the "holding a block" flag (the last value)


def final_frames(time_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Each demo's last valid frame: indices ``(N, 1)`` and mask ``(N, 1)``."""
    last = (time_mask.long().sum(1).clamp(min=1) - 1)[:, None]
    return last, torch.ones_like(last, dtype=torch.bool)


def snapshot_frames(demo: Tensor, time_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Indices ``(N, F)`` and mask ``(N, F)`` of the frames that end a stage (the first frame
    after the gripper lets go of a block) and of the last valid frame, in time order."""
    t = time_mask.shape[1]
    valid = time_mask.bool()
    holding = (demo[..., HOLDING] > 0.5) & valid
    keep = torch.zeros_like(valid)
    keep[:, 1:] = holding[:, :-1] & ~holding[:, 1:] & valid[:, 1:]
    last, _ = final_frames(time_mask)
    keep.scatter_(1, last, True)
    keep_n = keep.sum(1)
    f = int(keep_n.max())
    key = (~keep).long() * t + torch.arange(t, device=keep.device)[None]   # kept frames first, in time order
    idx = torch.argsort(key, 1)[:, :f]
    return idx, torch.arange(f, device=keep.device)[None] < keep_n[:, None]


class BlockStackPolicy(nn.Module):
    """Demonstration-conditioned block-stacking policy (see module docstring)."""

    def __init__(self, hidden: int = 64, manipulation: tuple[int, ...] = (256, 256), dropout: float = 0.95,
                 action_bins: int = 0, hard_picks: bool = False, demo_frames: str = "all") -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"temporal dropout {dropout}: expected a probability in [0, 1)")
        if action_bins == 1 or action_bins < 0:
            raise ValueError(f"action_bins={action_bins}: expected 0 (regression) or >= 2")
        if demo_frames not in DEMO_FRAMES:
            raise ValueError(f"demo_frames={demo_frames!r}: expected one of {DEMO_FRAMES}")
        self.dropout, self.action_bins, self.hard_picks = dropout, action_bins, hard_picks
        self.demo_frames = demo_frames   # "all": temporal dropout over all frames; "final" / "snapshots" ignore it
        self.ids = nn.Parameter(torch.randn(MAX_BLOCKS, hidden) * 0.5)
        self.inp = nn.Linear(3 + 2, hidden)
        self.encoder = nn.ModuleList([NeighbourhoodAttention(hidden) for _ in range(2)])
        self.tq, self.tk, self.tv = (nn.Linear(hidden, hidden) for _ in range(3))
        self.tnorm = nn.LayerNorm(hidden)
        self.cq, self.ck = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.join = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU())
        self.relate = NeighbourhoodAttention(hidden)
        self.pick = nn.Linear(hidden, 2)
        layers: list[nn.Module] = []
        width = 4 * 3 + 2 + 1 + hidden
        for m in manipulation:
            layers += [nn.Linear(width, m), nn.ReLU()]
            width = m
        layers.append(nn.Linear(width, 3 * action_bins + 1 if action_bins else 4))
        self.manipulation = nn.Sequential(*layers)

    def _embed(self, obs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-block embeddings ``(..., B, H)``, positions ``(..., B, 3)``, gripper ``(..., 2)``."""
        pos = obs[..., : 3 * MAX_BLOCKS].reshape(*obs.shape[:-1], MAX_BLOCKS, 3) / POS_SCALE
        grip = obs[..., 3 * MAX_BLOCKS:]
        h = torch.relu(self.inp(torch.cat([pos, grip.unsqueeze(-2).expand(*pos.shape[:-1], 2)], -1))) + self.ids
        for layer in self.encoder:
            h = layer(h, pos, mask)
        return h, pos, grip

    def encode_demo(self, demo: Tensor, time_mask: Tensor, entities: Tensor,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Demo embedding ``(N, F, B, H)`` and frame mask ``(N, F)``."""
        if self.demo_frames == "final":
            idx, fmask = final_frames(time_mask)
        elif self.demo_frames == "snapshots":
            idx, fmask = snapshot_frames(demo, time_mask)
        else:
            idx, fmask = temporal_dropout_frames(time_mask, self.dropout, generator, self.training)
        frames = demo[torch.arange(demo.shape[0], device=demo.device)[:, None], idx]       # (N, F, D)
        if frames.shape[1] > PACKED_MIN_FRAMES:
            return self._encode_packed(frames, fmask, entities), fmask
        mask = entities.bool()[:, None].expand(-1, frames.shape[1], -1)
        h, _, _ = self._embed(frames, mask)                                                # (N, F, B, H)
        hb = h.transpose(1, 2)                                                             # (N, B, F, H)
        s = torch.einsum("nbfh,nbgh->nbfg", self.tq(hb), self.tk(hb)) / math.sqrt(h.shape[-1])
        s = s.masked_fill(~fmask[:, None, None], _NEG)
        hb = self.tnorm(hb + torch.softmax(s, -1) @ self.tv(hb))
        return hb.transpose(1, 2), fmask

    def _encode_packed(self, frames: Tensor, fmask: Tensor, entities: Tensor) -> Tensor:
        """The demo embedding for long demos (temporal dropout off): only the valid frames
        are embedded, and attention over time is PyTorch's fused kernel. The same function
        as the explicit path to float rounding (padded frames get zeros there instead of
        values nothing reads), about 2x faster on CPU for 220-frame demos."""
        sel = fmask.nonzero(as_tuple=True)
        hv, _, _ = self._embed(frames[sel], entities.bool()[sel[0]])                      # (M, B, H)
        h = hv.new_zeros(*frames.shape[:2], *hv.shape[1:]).index_put(sel, hv)           # (N, F, B, H)
        hb = h.transpose(1, 2)                                                             # (N, B, F, H)
        att = F.scaled_dot_product_attention(self.tq(hb), self.tk(hb), self.tv(hb),
                                             attn_mask=fmask[:, None, None, :])
        return self.tnorm(hb + att).transpose(1, 2)

    def act(self, ctx: tuple[Tensor, Tensor], obs: Tensor, entities: Tensor, with_picks: bool = False,
            picks: Tensor | None = None):
        """Raw outputs ``(N, S, 4 or 3 * bins + 1)``: motion and grip logit, for observations ``(N, S, 32)``.

        With ``with_picks`` also the block-attention logits ``(N, S, B, 2)`` (block to move,
        block to put it on). With ``hard_picks`` the context takes the positions of the most
        attended blocks (a soft average of positions is off by more than the placing
        tolerance unless the attention is very sharp); ``picks (N, S, 2)`` (training, -1 =
        unknown) then replaces them by the expert's blocks (teacher forcing)."""
        demo_h, fmask = ctx
        bmask = entities.bool()[:, None].expand(-1, obs.shape[1], -1)                      # (N, S, B)
        c, pos, grip = self._embed(obs, bmask)                                             # (N, S, B, H)
        q = self.cq(_masked_mean(c, bmask, -2))                                            # (N, S, H)
        k = self.ck(_masked_mean(demo_h, entities.bool()[:, None].expand(-1, demo_h.shape[1], -1), -2))
        s = torch.einsum("nsh,nfh->nsf", q, k) / math.sqrt(q.shape[-1])
        a = torch.softmax(s.masked_fill(~fmask[:, None], _NEG), -1)
        read = torch.einsum("nsf,nfbh->nsbh", a, demo_h)
        z = self.relate(self.join(torch.cat([c, read], -1)), pos, bmask)
        logits = self.pick(z).masked_fill(~bmask[..., None], _NEG)                         # (N, S, B, 2)
        if self.hard_picks:
            idx = logits.argmax(-2)                                                        # (N, S, 2)
            if picks is not None:
                idx = torch.where(picks >= 0, picks, idx)
            sel = torch.gather(pos, -2, idx.unsqueeze(-1).expand(*idx.shape, 3))          # (N, S, 2, 3)
            src, dst = sel[..., 0, :], sel[..., 1, :]
        else:
            w = torch.softmax(logits, -2)
            src, dst = (w[..., :1] * pos).sum(-2), (w[..., 1:] * pos).sum(-2)             # (N, S, 3) each
        top = pos[..., 2].masked_fill(~bmask, _NEG).amax(-1, keepdim=True)                 # highest block
        # offsets in block edges, raw and clipped to one step: the expert's motion is a clipped offset
        src, dst, top = src * POS_SCALE, dst * POS_SCALE, top * POS_SCALE
        feats = [src, dst, src.clamp(-1, 1), dst.clamp(-1, 1), grip, top, _masked_mean(z, bmask, -2)]
        out = self.manipulation(torch.cat(feats, -1))
        return (out, logits) if with_picks else out


    def command(self, out: Tensor) -> Tensor:
        """Executable actions ``(..., 4)`` in [-1, 1] from raw outputs."""
        return block_command(out, self.action_bins)


def _bins_of(motion: Tensor, bins: int) -> Tensor:
    return torch.round((motion.clamp(-1, 1) + 1) / 2 * (bins - 1)).long()


def action_loss(pred: Tensor, label: Tensor, bins: int = 0) -> Tensor:
    """Behaviour-cloning loss per state ``(N, S)``: motion (MSE, or cross-entropy over ``bins``
    values per axis) + cross-entropy on the grip."""
    grip = F.binary_cross_entropy_with_logits(pred[..., -1], (label[..., 3] > 0).to(pred.dtype), reduction="none")
    if not bins:
        return ((pred[..., :3] - label[..., :3]) ** 2).sum(-1) + grip
    logits = pred[..., :-1].reshape(*pred.shape[:-1], 3, bins)
    ce = F.cross_entropy(logits.flatten(0, -2), _bins_of(label[..., :3], bins).flatten(), reduction="none")
    return ce.view(*pred.shape[:-1], 3).sum(-1) + grip


class BlockLoss:
    """Behaviour cloning, plus (``pick_weight > 0``) cross-entropy of the block-attention heads
    against the blocks the expert is moving / placing onto (a deviation from the paper, which
    trains the attention through the action loss alone)."""

    def __init__(self, pick_weight: float = 0.0) -> None:
        self.pick_weight = pick_weight

    def __call__(self, policy, ctx, obs: Tensor, entities: Tensor, label: Tensor, picks: Tensor) -> Tensor:
        pred, logits = policy.act(ctx, obs, entities, with_picks=True,
                                  picks=picks if getattr(policy, "hard_picks", False) else None)
        loss = action_loss(pred, label, policy.action_bins).mean()
        if self.pick_weight > 0:
            for k in range(2):
                tgt = picks[..., k]
                ok = tgt >= 0
                if ok.any():
                    loss = loss + self.pick_weight * F.cross_entropy(logits[..., k][ok], tgt[ok])
        return loss


def block_command(pred: Tensor, bins: int = 0) -> Tensor:
    """Executable actions in [-1, 1] from raw outputs: motion (clipped, or the most likely bin's
    value), grip = sign of the logit."""
    if bins:
        idx = pred[..., :-1].reshape(*pred.shape[:-1], 3, bins).argmax(-1)
        motion = idx.to(pred.dtype) / (bins - 1) * 2 - 1
    else:
        motion = pred[..., :3].clamp(-1, 1)
    return torch.cat([motion, torch.where(pred[..., -1:] > 0, 1.0, -1.0)], -1)
