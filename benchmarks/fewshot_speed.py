"""Meta-training throughput of the few-shot meta-learners: episodes per second of one
meta-update (adapt on the support set, query loss, backward to the meta-parameters), 1 thread.

``lstm`` is the shipped meta-learner cell ((4 hidden, n) layout, one sigmoid, hand-written
gate backward); ``lstm-plain`` the same math written as the cell was before it (``nn.LSTMCell``
rows (n, 4 hidden), ``torch.tanh``, autograd throughout), timed in turn with it, repeat by
repeat, so their ratio holds when the machine's speed drifts; ``maml`` for scale.

The learner is ``fewshot-glyphs``' 4-block conv net (16 filters, 28 x 28 glyphs); episodes
are random tensors of the experiment's shapes (the glyph rendering is not what is timed).
Each setting runs ``--episodes`` meta-updates after a warm-up, ``--repeats`` times, and the
median is reported; also the split of one LSTM meta-learner episode into the learner
(forward + backward through the conv net) and the meta-learner cell.

    python benchmarks/fewshot_speed.py [--repeats 5] [--episodes 10] [--out benchmarks/results/fewshot_speed.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from learnt.fewshot import MAML, ConvLearner, MetaLearnerLSTM  # noqa: E402
from learnt.fewshot.episodes import Episode  # noqa: E402
from learnt.learned.preprocess import log_sign  # noqa: E402

# (n_way, shots, LSTM inner steps) as in fewshot-glyphs (12 steps at 1-shot, 5 at 5-shot)
SETTINGS = [(5, 1, 12), (5, 5, 5), (20, 1, 12), (20, 5, 5)]
N_QUERY = 15


def _episode(n_way: int, shots: int, g: torch.Generator) -> Episode:
    sx = torch.rand(n_way * shots, 1, 28, 28, generator=g)
    qx = torch.rand(n_way * N_QUERY, 1, 28, 28, generator=g)
    sy = torch.arange(n_way).repeat_interleave(shots)
    qy = torch.arange(n_way).repeat_interleave(N_QUERY)
    return Episode(sx, sy, qx, qy)


class PlainCellLSTM(MetaLearnerLSTM):
    """The meta-learner with the cell as it was written before the fast path (same math)."""

    def _init_flat(self, n: int, device, dtype) -> dict:
        z = torch.zeros(n, self.hidden_size, device=device, dtype=dtype)
        zero = torch.zeros(n, device=device, dtype=dtype)
        return {"h": z, "c": z.clone(), "f": zero, "i": zero.clone()}

    def step(self, theta, grad, loss, cell):
        grad, loss = grad.detach(), loss.detach()
        x = torch.cat([log_sign(loss.expand_as(grad), self.preproc_p), log_sign(grad, self.preproc_p)], dim=1)
        m = self.lstm
        w = torch.cat([m.weight_ih, m.weight_hh], 1)
        gates = torch.addmm(m.bias_ih + m.bias_hh, torch.cat([x, cell["h"]], 1), w.t())
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * cell["c"] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        f_pre = torch.cat([h, theta[:, None], cell["f"][:, None]], 1) @ self.w_f + self.b_f
        i_pre = torch.cat([h, theta[:, None], cell["i"][:, None]], 1) @ self.w_i + self.b_i
        fs, is_ = torch.sigmoid(f_pre), torch.sigmoid(i_pre)
        return fs * theta - is_ * grad, {"h": h, "c": c, "f": f_pre, "i": i_pre}, (fs, is_)


def _method(name: str, n_way: int, steps: int):
    torch.manual_seed(0)
    learner = ConvLearner(1, 28, n_way, 16)
    if name in ("lstm", "lstm-plain"):
        return (MetaLearnerLSTM if name == "lstm" else PlainCellLSTM)(learner, "classification", steps, 20)
    return MAML(learner, "classification", 5, 0.4)


def _time_updates(method, episodes: list[Episode]) -> float:
    opt = torch.optim.Adam(method.parameters(), 1e-3)
    t0 = time.perf_counter()
    for ep in episodes:
        opt.zero_grad(set_to_none=True)
        loss, _ = method.meta_loss(ep)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / len(episodes)


def bench(names: list[str], n_way: int, shots: int, steps: int, n_episodes: int, repeats: int) -> list[dict]:
    """The methods timed in turn, repeat by repeat, on the same episodes."""
    g = torch.Generator().manual_seed(0)
    methods = {n: _method(n, n_way, steps) for n in names}
    episodes = [_episode(n_way, shots, g) for _ in range(n_episodes)]
    for m in methods.values():
        _time_updates(m, episodes[:2])
    secs: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):
        for n, m in methods.items():
            secs[n].append(_time_updates(m, episodes))
    rows = []
    for n in names:
        s = statistics.median(secs[n])
        rows.append({"method": n, "n_way": n_way, "shots": shots, "inner_steps": steps if n != "maml" else 5,
                     "ms_per_episode": 1e3 * s, "episodes_per_s": 1.0 / s, "repeats_ms": [1e3 * x for x in secs[n]]})
    if "lstm" in secs and "lstm-plain" in secs:
        ratios = [a / b for a, b in zip(secs["lstm-plain"], secs["lstm"])]
        rows[names.index("lstm")]["speedup_vs_plain_cell"] = statistics.median(ratios)
    return rows


def split_lstm(n_way: int, shots: int, steps: int, repeats: int) -> dict:
    """ms per episode in the learner (forward + backward of the support loss, the query
    forward) and in the cell (the rest: meta-learner steps and the meta-backward)."""
    g = torch.Generator().manual_seed(0)
    m = _method("lstm", n_way, steps)
    ep = _episode(n_way, shots, g)
    from learnt.fewshot.learner import run
    from learnt.fewshot.methods import task_loss

    def learner_only() -> None:
        th = m.c0.detach().requires_grad_(True)
        for _ in range(steps):
            loss = task_loss("classification", run(m.learner, m.flat.unflatten(th), ep.support_x), ep.support_y)
            torch.autograd.grad(loss, th)
        run(m.learner, m.flat.unflatten(th), ep.query_x)

    learner_only()
    t_learn = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        learner_only()
        t_learn.append(time.perf_counter() - t0)
    whole = bench(["lstm"], n_way, shots, steps, 5, repeats)[0]["ms_per_episode"]
    learn = 1e3 * statistics.median(t_learn)
    return {"n_way": n_way, "shots": shots, "whole_ms": whole, "learner_ms": learn, "cell_and_meta_backward_ms": whole - learn}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--methods", nargs="+", default=["lstm-plain", "lstm", "maml"],
                    choices=["lstm-plain", "lstm", "maml"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.repeats < 1 or a.episodes < 1:
        raise SystemExit(f"--repeats {a.repeats} --episodes {a.episodes}; expected both >= 1")
    rows = []
    for n_way, shots, steps in SETTINGS:
        for r in bench(a.methods, n_way, shots, steps, a.episodes, a.repeats):
            rows.append(r)
            extra = f"  {r['speedup_vs_plain_cell']:.2f}x the plain cell" if "speedup_vs_plain_cell" in r else ""
            print(f"{r['method']:10s} {n_way:2d}-way {shots}-shot  {r['ms_per_episode']:8.1f} ms/episode  "
                  f"{r['episodes_per_s']:6.2f} episodes/s{extra}", flush=True)
    split = split_lstm(5, 1, 12, a.repeats) if "lstm" in a.methods else None
    if split:
        print(f"lstm 5-way 1-shot: learner {split['learner_ms']:.1f} ms, cell + meta-backward "
              f"{split['cell_and_meta_backward_ms']:.1f} ms of {split['whole_ms']:.1f}")
    if a.out:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    check=False).stdout.strip()
        except OSError:
            commit = ""
        out = {"command": "python benchmarks/fewshot_speed.py", "torch": torch.__version__, "threads": 1,
               "commit": commit, "rows": rows, "lstm_split": split}
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
