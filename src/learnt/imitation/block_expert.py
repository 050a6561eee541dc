"""The scripted block-stacking expert and the benchmark's task list (140 train / 43 test).

The expert is a function of the state alone (no hidden phase), so it also labels the states
a learner visits (the DAgger oracle): it keeps every correctly placed block, puts the next
block of the layout on its support when both are clear, clears blocks that sit where they
should not by parking them on free table spots, and otherwise hovers with the gripper open.
"""
from __future__ import annotations

import functools

import numpy as np

from learnt.imitation.blockworld import LETTERS, MAX_BLOCKS, MIN_BLOCKS, SPEED, BlockWorld

_ALIGN = 0.15   # close enough to a waypoint (per axis); below GRASP_TOL and PLACE_TOL
_PARK = np.array([(x, y) for x in np.arange(-4.0, 4.01, 1.6) for y in np.arange(-4.0, 4.01, 1.6)])


def _toward(g: np.ndarray, goal: np.ndarray, lift: float) -> np.ndarray:
    """Motion (dx, dy, dz) in [-1, 1]: rise to ``lift`` before moving across, then descend;
    a small horizontal error is corrected at the current height."""
    d = goal - g
    far = np.max(np.abs(d[:2]))
    if far > 0.5:
        step = np.array([0.0, 0.0, lift - g[2]]) if g[2] < lift - _ALIGN else np.array([d[0], d[1], lift - g[2]])
    elif far > _ALIGN:
        step = np.array([d[0], d[1], 0.0])
    else:
        step = d
    return np.clip(step / SPEED, -1.0, 1.0)


def _free_spot(w: BlockWorld, i: int) -> np.ndarray:
    """The free table spot (no block within 1.5 on both axes) nearest block ``i``."""
    others = np.delete(w.pos[:, :2], i, axis=0)
    busy = np.any(np.all(np.abs(_PARK[:, None, :] - others[None]) < 1.5, axis=-1), axis=1)
    free = _PARK[~busy] if not busy.all() else _PARK
    k = int(np.argmin(np.sum((free - w.pos[i, :2]) ** 2, axis=1)))
    return np.array([free[k, 0], free[k, 1], 0.5])


def _plan_move(w: BlockWorld, towers: list[list[int]]) -> tuple[int, np.ndarray, int] | None:
    """(block, destination centre, destination block or -1 for the table) of the next move,
    or None when the layout holds."""
    rel = w.relations()
    support, clear = rel
    ok = w.correct(towers, rel)
    parent = {t[k]: (t[k - 1] if k else -1) for t in towers for k in range(len(t))}
    for tower in towers:
        for i in tower:
            if ok[i]:
                continue
            p = parent[i]
            if clear[i] and (p == -1 or (ok[p] and clear[p])):
                if p == -1:
                    return i, _free_spot(w, i), -1
                return i, w.pos[p] + np.array([0.0, 0.0, 1.0]), p
            break
    # nothing placeable: park a clear block that is stacked where it should not be
    for i in range(w.n_blocks):
        if not ok[i] and clear[i] and support[i] != -1:
            return i, _free_spot(w, i), -1
    return None


def expert_action(w: BlockWorld, towers: list[list[int]]) -> np.ndarray:
    """The expert's action ``(dx, dy, dz, grip)`` in [-1, 1] for state ``w``.

    Example:
        >>> from learnt.imitation.blockworld import sample_scene
        >>> w = BlockWorld(*sample_scene(np.random.default_rng(0), 2))
        >>> expert_action(w, [[0, 1]]).shape
        (4,)
    """
    return expert_plan(w, towers)[0]


def expert_plan(w: BlockWorld, towers: list[list[int]]) -> tuple[np.ndarray, int, int]:
    """The expert's action and the move it is making: ``(action (4,), block, destination)``.

    ``block`` is the block being fetched or carried (-1 when the layout holds) and
    ``destination`` the block it goes onto (-1 for a table spot or none).
    """
    g = w.gripper
    top = w.pos[:, 2].copy()
    if w.held >= 0:
        top[w.held] = -np.inf
    lift = max(float(np.max(top)) + 1.0, 1.5) + (1.0 if w.held >= 0 else 0.0)
    move = _plan_move(w, towers)
    if w.held >= 0:
        i = w.held
        if move is None or move[0] != i:
            dest, dst = _free_spot(w, i), -1
        else:
            dest, dst = move[1], move[2]
        if np.all(np.abs(dest - g) <= _ALIGN):
            return np.array([0.0, 0.0, 0.0, -1.0]), i, dst
        return np.array([*_toward(g, dest, lift), 1.0]), i, dst
    if move is None:
        hover = np.array([g[0], g[1], lift])
        return np.array([*np.clip((hover - g) / SPEED, -1, 1), -1.0]), -1, -1
    i = move[0]
    if np.all(np.abs(w.pos[i] - g) <= _ALIGN):
        return np.array([0.0, 0.0, 0.0, 1.0]), i, move[2]
    return np.array([*_toward(g, w.pos[i], lift), -1.0]), i, move[2]


def canonical_layout(towers: list[list[int]]) -> str:
    """The layout string with towers sorted (so equal layouts compare equal)."""
    return " ".join(sorted("".join(LETTERS[i] for i in t) for t in towers))


def benchmark_tasks(n_train: int = 140, n_test: int = 43, max_stages: int = 8) -> tuple[list[str], list[str]]:
    """A fixed list of distinct layouts, balanced over 1..``max_stages`` stages, split train/test.

    The split is a property of the benchmark (fixed seed), not of a run. Layouts use 1 to 3
    towers (4 for one stage, which has few layouts); every stage count gets about the same
    number of tasks and a proportional share of test tasks.
    """
    train, test = _benchmark_tasks(n_train, n_test, max_stages)
    return list(train), list(test)


@functools.lru_cache(maxsize=4)
def _benchmark_tasks(n_train: int, n_test: int, max_stages: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rng = np.random.default_rng(20170321)
    total = n_train + n_test
    pools: dict[int, list[str]] = {}
    for s in range(1, max_stages + 1):
        seen: dict[str, None] = {}
        for _ in range(4000):
            if len(seen) >= total:
                break
            n_towers = int(rng.integers(1, 5 if s == 1 else 4))
            b = s + n_towers
            if not MIN_BLOCKS <= b <= MAX_BLOCKS:
                continue
            perm = rng.permutation(b)
            cuts = np.sort(rng.choice(np.arange(1, b), n_towers - 1, replace=False)) if n_towers > 1 else []
            seen.setdefault(canonical_layout([list(map(int, t)) for t in np.split(perm, cuts)]))
        pools[s] = list(seen)
    counts = {s: 0 for s in pools}
    while sum(counts.values()) < total:   # water-filling: one more task to the emptiest stage that has one
        open_ = [s for s in pools if counts[s] < len(pools[s])]
        if not open_:
            raise ValueError(f"only {sum(counts.values())} distinct layouts with <= {max_stages} stages; "
                             f"expected {total}")
        counts[min(open_, key=lambda s: (counts[s], s))] += 1
    n_te = {s: max(1, round(n_test * counts[s] / total)) for s in pools}
    while sum(n_te.values()) > n_test:
        n_te[max(n_te, key=lambda s: (n_te[s], s))] -= 1
    while sum(n_te.values()) < n_test:
        n_te[max(n_te, key=lambda s: (counts[s] - n_te[s], s))] += 1
    train, test = [], []
    for s in pools:
        lays = pools[s][: counts[s]]
        test += lays[: n_te[s]]
        train += lays[n_te[s]:]
    return tuple(train), tuple(test)
