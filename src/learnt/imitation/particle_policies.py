"""Demonstration-conditioned policies for particle reaching (Duan et al. 2017, Sec. 5.1).

Every policy maps a demo and current observations to forces with two calls:
``ctx = encode_demo(demo (N, T, 34), time_mask (N, T))`` once per episode, then
``act(ctx, obs (N, S, 34)) -> (N, S, 2)`` for any number ``S`` of states. The three
architectures of the paper:

- ``lstm``: an LSTM reads the demo; its final state and the observation feed an MLP.
- ``lstm-attention``: an LSTM reads the demo and at every step attends over the landmark
  slots of the current demo frame (keys from each slot's features, query from the LSTM);
  the last attention weights say which colour slot is the target. The policy reads the
  attended slot's relative position from the current observation.
- ``final-attention``: only the demo's final frame; attention over its landmark slots.

The attention variants share one slot-key network across colours, so they can follow a demo
to a colour they never saw as a target during training; the plain LSTM cannot.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from learnt.imitation.particle import N_COLOURS, OBS_DIM

ARCHITECTURES = ("lstm", "lstm-attention", "final-attention")


def _mlp(i: int, h: int, o: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    for k in range(layers):
        mods += [nn.Linear(i if k == 0 else h, h), nn.ReLU()]
    mods.append(nn.Linear(h, o))
    return nn.Sequential(*mods)


def _slots(obs: Tensor) -> Tensor:
    """``(..., 34) -> (..., 10, 3)``: per colour (rel x, rel y, present)."""
    return obs[..., 4:].reshape(*obs.shape[:-1], N_COLOURS, 3)


def _last(seq: Tensor, time_mask: Tensor) -> Tensor:
    """The last valid entry along dim 1 of ``seq (N, T, ...)``."""
    idx = time_mask.long().sum(1).clamp(min=1) - 1
    return seq[torch.arange(seq.shape[0]), idx]


class _AttentionReadout(nn.Module):
    """Turns slot weights ``(N, 10)`` into an action from the current observation."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.policy = _mlp(4, hidden, 2)

    def act(self, alpha: Tensor, obs: Tensor, entities: Tensor | None = None) -> Tensor:
        rel = _slots(obs)[..., :2]                                     # (N, S, 10, 2)
        target = (alpha[:, None, :, None] * rel).sum(-2)               # (N, S, 2)
        return self.policy(torch.cat([target, obs[..., 2:4]], -1))


def _slot_softmax(scores: Tensor, present: Tensor) -> Tensor:
    return torch.softmax(scores.masked_fill(present < 0.5, -1e9), -1)


class FinalStateAttention(_AttentionReadout):
    """Attention over the landmark slots of the demo's final frame."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__(hidden)
        self.score = _mlp(3, hidden, 1)

    def encode_demo(self, demo: Tensor, time_mask: Tensor, entities: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
        s = _slots(_last(demo, time_mask))                             # (N, 10, 3)
        return _slot_softmax(self.score(s).squeeze(-1), s[..., 2])


class LSTMAttention(_AttentionReadout):
    """LSTM over the demo that attends over the landmark slots at every step."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__(hidden)
        self.cell = nn.LSTMCell(4 + 2, hidden)
        self.query = nn.Linear(hidden, hidden)
        self.key = _mlp(3, hidden, hidden, layers=1)

    def encode_demo(self, demo: Tensor, time_mask: Tensor, entities: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
        n, t, _ = demo.shape
        h = demo.new_zeros(n, self.cell.hidden_size)
        c = torch.zeros_like(h)
        read = demo.new_zeros(n, 2)
        alpha = demo.new_full((n, N_COLOURS), 1.0 / N_COLOURS)
        for k in range(t):
            h2, c2 = self.cell(torch.cat([demo[:, k, :4], read], -1), (h, c))
            s = _slots(demo[:, k])
            scores = (self.key(s) * self.query(h2)[:, None]).sum(-1) / self.cell.hidden_size ** 0.5
            a2 = _slot_softmax(scores, s[..., 2])
            valid = time_mask[:, k, None].float()
            h, c = valid * h2 + (1 - valid) * h, valid * c2 + (1 - valid) * c
            alpha = valid * a2 + (1 - valid) * alpha
            read = (alpha[..., None] * s[..., :2]).sum(1)
        return alpha


class PlainLSTM(nn.Module):
    """LSTM over the demo frames; its final hidden state conditions an MLP policy."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(OBS_DIM, hidden, batch_first=True)
        self.policy = _mlp(hidden + OBS_DIM, hidden, 2)

    def encode_demo(self, demo: Tensor, time_mask: Tensor, entities: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
        out, _ = self.lstm(demo)
        return _last(out, time_mask)

    def act(self, ctx: Tensor, obs: Tensor, entities: Tensor | None = None) -> Tensor:
        return self.policy(torch.cat([ctx[:, None].expand(-1, obs.shape[1], -1), obs], -1))


def make_particle_policy(arch: str, hidden: int = 64) -> nn.Module:
    """One of :data:`ARCHITECTURES`."""
    table = {"lstm": PlainLSTM, "lstm-attention": LSTMAttention, "final-attention": FinalStateAttention}
    if arch not in table:
        raise ValueError(f"architecture {arch!r}: expected one of {list(ARCHITECTURES)}")
    return table[arch](hidden)
