"""Kinematic block-stacking world (Duan et al. 2017, block stacking), one scene in numpy.

Units are block edges: every block is a unit cube, ``pos[i]`` is its centre, a block resting
on the table has ``z == 0.5``. The gripper is a point at the grasp centre; it moves by at
most ``SPEED`` per axis and step. Closing the gripper within ``GRASP_TOL`` of the centre of
a *clear* block (nothing on top) grasps it; the held block moves with the gripper and
cannot pass through other blocks. Opening releases it: it lands on the highest block below
whose footprint it overlaps, and stays there only when its centre is within
``PLACE_TOL`` of that block's centre on both axes; otherwise it topples off to the side and
falls to whatever is below there (the table or a lower block).

A task is a tower layout string such as ``"ab cd ef"``: each word is one tower listed from
the bottom up, letters name blocks ``a`` (index 0) onward, and a layout uses the first
``B`` letters exactly once. Its *stages* are the number of block placements it needs,
``B - towers``.
"""
from __future__ import annotations

import numpy as np

LETTERS = "abcdefghij"
MIN_BLOCKS, MAX_BLOCKS = 2, 10
SPEED = 1.0          # max gripper displacement per axis and step
GRASP_TOL = 0.3      # gripper-to-block-centre distance (per axis) that allows a grasp
PLACE_TOL = 0.4      # horizontal offset (per axis) of a stable placement
ARENA = 4.5          # |x|, |y| of the gripper stay within this
Z_MAX = 12.0         # gripper ceiling
EPS = 1e-6


def parse_layout(layout: str) -> list[list[int]]:
    """Towers (bottom to top, block indices) of a layout string.

    Example:
        >>> parse_layout("ab c")
        [[0, 1], [2]]
    """
    if not isinstance(layout, str) or not layout.split():
        raise ValueError(f"layout {layout!r}: expected towers of block letters such as 'ab cd'")
    towers = [[LETTERS.find(ch) for ch in word] for word in layout.split()]
    flat = [i for t in towers for i in t]
    b = len(flat)
    if not MIN_BLOCKS <= b <= MAX_BLOCKS:
        raise ValueError(f"layout {layout!r} uses {b} blocks; expected {MIN_BLOCKS} to {MAX_BLOCKS}")
    if sorted(flat) != list(range(b)):
        raise ValueError(f"layout {layout!r}: expected each of the letters {LETTERS[:b]!r} exactly once")
    return towers


def layout_stages(layout: str) -> int:
    """Number of placements a layout needs (blocks minus towers)."""
    towers = parse_layout(layout)
    return sum(len(t) for t in towers) - len(towers)


def default_horizon(layout: str) -> int:
    """Episode length for a layout: enough for the noisy expert with slack (25 steps a stage + 20)."""
    return 25 * layout_stages(layout) + 20


def check_block_count(n_blocks: int) -> int:
    """Validate a block count (2 to 10)."""
    if not isinstance(n_blocks, (int, np.integer)) or not MIN_BLOCKS <= int(n_blocks) <= MAX_BLOCKS:
        raise ValueError(f"n_blocks={n_blocks!r}: expected an integer from {MIN_BLOCKS} to {MAX_BLOCKS}")
    return int(n_blocks)


def check_action(action, dim: int) -> np.ndarray:
    """A finite action of shape ``(dim,)`` in [-1, 1], else a one-line ValueError."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (dim,):
        raise ValueError(f"action of shape {a.shape}: expected shape ({dim},)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action {a.tolist()}: expected finite values")
    if np.any(np.abs(a) > 1.0 + 1e-5):
        raise ValueError(f"action {np.round(a, 4).tolist()}: expected every entry in [-1, 1]")
    return np.clip(a, -1.0, 1.0)


def sample_scene(rng: np.random.Generator, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocks on the table at random, at least 1.6 apart (Chebyshev), and a gripper above them.

    Returns ``(pos (B, 3), gripper (3,))``.
    """
    n_blocks = check_block_count(n_blocks)
    half = 3.5
    for _ in range(1000):
        pos = np.zeros((n_blocks, 3))
        ok = True
        for i in range(n_blocks):
            for _ in range(200):
                xy = rng.uniform(-half, half, 2)
                if i == 0 or np.all(np.max(np.abs(pos[:i, :2] - xy), axis=1) >= 1.6):
                    break
            else:
                ok = False
                break
            pos[i, :2] = xy
        if ok:
            pos[:, 2] = 0.5
            gripper = np.array([*rng.uniform(-half, half, 2), rng.uniform(2.0, 3.0)])
            return pos, gripper
    raise RuntimeError(f"could not place {n_blocks} blocks")  # pragma: no cover


class BlockWorld:
    """One block scene: ``pos (B, 3)``, ``gripper (3,)``, ``closed`` and ``held`` (-1 if none)."""

    def __init__(self, pos: np.ndarray, gripper: np.ndarray) -> None:
        self.pos = np.array(pos, dtype=np.float64)
        check_block_count(len(self.pos))
        self.gripper = np.array(gripper, dtype=np.float64)
        self.closed = False
        self.held = -1

    @property
    def n_blocks(self) -> int:
        return len(self.pos)

    def copy(self) -> "BlockWorld":
        w = BlockWorld(self.pos, self.gripper)
        w.closed, w.held = self.closed, self.held
        return w

    # ------------------------------------------------------------------ geometry
    def _overlap(self, xy: np.ndarray, exclude: int) -> np.ndarray:
        """Mask of blocks whose footprint overlaps a unit footprint centred at ``xy``."""
        m = np.all(np.abs(self.pos[:, :2] - xy) < 1.0 - EPS, axis=1)
        if exclude >= 0:
            m[exclude] = False
        return m

    def relations(self) -> tuple[np.ndarray, np.ndarray]:
        """``(support (B,), clear (B,))`` of every block in one vectorised pass.

        ``support[i]`` is the block ``i`` rests on, -1 for the table, -2 when it is held or
        floating; ``clear[i]`` says no (unheld) block overlaps it from above.
        """
        p = self.pos
        ov = np.all(np.abs(p[:, None, :2] - p[None, :, :2]) < 1.0 - EPS, axis=-1)
        np.fill_diagonal(ov, False)
        if self.held >= 0:
            ov[self.held, :] = False
            ov[:, self.held] = False
        dz = p[None, :, 2] - p[:, None, 2]          # z_j - z_i
        clear = ~np.any(ov & (dz > EPS), axis=1)
        on = ov & (np.abs(dz + 1.0) < 1e-4)
        support = np.where(on.any(axis=1), on.argmax(axis=1), -2)
        support = np.where(np.abs(p[:, 2] - 0.5) < 1e-4, -1, support)
        if self.held >= 0:
            support[self.held] = -2
        return support, clear

    def is_clear(self, i: int) -> bool:
        """No block (other than a held one) rests on or overlaps above block ``i``."""
        return bool(self.relations()[1][i])

    def support(self, i: int) -> int:
        """Index of the block ``i`` rests on, -1 for the table, -2 if it is held or floating."""
        return int(self.relations()[0][i])

    def _resolve(self, i: int, c: np.ndarray) -> tuple[np.ndarray, bool]:
        """Move held block ``i`` to ``c``: lifted onto blocks it was above, blocked by others."""
        m = self._overlap(c[:2], i)
        z = self.pos[:, 2]
        below = m & (z <= self.pos[i, 2] - 1.0 + 1e-6)
        c = c.copy()
        if below.any():
            c[2] = max(c[2], float(z[below].max()) + 1.0)
        blocked = m & ~below & (np.abs(z - c[2]) < 1.0 - EPS)
        return c, bool(blocked.any())

    # ------------------------------------------------------------------ dynamics
    def step(self, action: np.ndarray) -> None:
        """Apply a checked action ``(dx, dy, dz, grip)`` in [-1, 1]; grip > 0 closes."""
        target = self.gripper + SPEED * action[:3]
        target[:2] = np.clip(target[:2], -ARENA, ARENA)
        target[2] = np.clip(target[2], 0.5, Z_MAX)
        if self.held >= 0:
            # a carried block never passes through another: it rests on what is below it and a
            # sideways move into a block is cancelled (then only the vertical part happens)
            for cand in (target, np.array([*self.gripper[:2], target[2]])):
                cand, blocked = self._resolve(self.held, cand)
                if not blocked:
                    self.gripper = cand
                    break
            self.pos[self.held] = self.gripper
        else:
            self.gripper = target
        close = action[3] > 0
        if close and not self.closed:
            self.closed = True
            d = np.abs(self.pos - self.gripper)
            near = np.flatnonzero(np.all(d <= GRASP_TOL, axis=1))
            clear = self.relations()[1]
            near = [int(i) for i in near if clear[i]]
            if near:
                self.held = int(min(near, key=lambda i: float(np.sum(d[i] ** 2))))
                self.pos[self.held] = self.gripper
        elif not close and self.closed:
            self.closed = False
            if self.held >= 0:
                i, self.held = self.held, -1
                self._settle(i)

    def _settle(self, i: int, depth: int = 0) -> None:
        """Drop block ``i`` straight down; it stays on a block only if placed within tolerance."""
        below = np.flatnonzero(self._overlap(self.pos[i, :2], i) & (self.pos[:, 2] < self.pos[i, 2] - EPS))
        if len(below) == 0:
            self.pos[i, 2] = 0.5
            return
        j = int(below[np.argmax(self.pos[below, 2])])
        off = self.pos[i, :2] - self.pos[j, :2]
        if np.all(np.abs(off) <= PLACE_TOL) or depth >= 3:
            self.pos[i, 2] = self.pos[j, 2] + 1.0
            return
        # unstable: it topples off the side it overhangs most and falls from there
        axis = int(np.argmax(np.abs(off)))
        self.pos[i, axis] = self.pos[j, axis] + np.sign(off[axis]) * 1.05
        self.pos[i, 2] = self.pos[j, 2]
        self._settle(i, depth + 1)

    # ------------------------------------------------------------------ observation
    def observation(self) -> np.ndarray:
        """``3B + 2`` values: block centres relative to the gripper, then (closed, holding)."""
        rel = (self.pos - self.gripper).ravel()
        return np.concatenate([rel, [float(self.closed), float(self.held >= 0)]]).astype(np.float32)

    def correct(self, towers: list[list[int]], relations: tuple | None = None) -> np.ndarray:
        """Per block: it is where the layout wants it (on the table or on its correct support)."""
        support = (relations or self.relations())[0]
        ok = np.zeros(self.n_blocks, dtype=bool)
        for tower in towers:
            for k, i in enumerate(tower):
                if k == 0:
                    ok[i] = support[i] == -1
                else:
                    j = tower[k - 1]
                    d = self.pos[i, :2] - self.pos[j, :2]
                    ok[i] = ok[j] and support[i] == j and abs(d[0]) <= PLACE_TOL and abs(d[1]) <= PLACE_TOL
                if not ok[i]:
                    break
        return ok

    def success(self, towers: list[list[int]]) -> bool:
        """The layout holds: every tower stands as listed and nothing is held."""
        return bool(self.correct(towers).all()) and self.held < 0


def pad_observation(obs: np.ndarray, n_blocks: int, max_blocks: int = MAX_BLOCKS) -> tuple[np.ndarray, np.ndarray]:
    """Pad ``(..., 3B + 2)`` observations to ``(..., 3 max_blocks + 2)`` and return the block mask ``(max_blocks,)``."""
    n_blocks = check_block_count(n_blocks)
    obs = np.asarray(obs, dtype=np.float32)
    if obs.shape[-1] != 3 * n_blocks + 2:
        raise ValueError(f"observation of size {obs.shape[-1]}: expected 3*{n_blocks}+2 = {3 * n_blocks + 2}")
    pad = np.zeros(obs.shape[:-1] + (3 * max_blocks + 2,), dtype=np.float32)
    pad[..., : 3 * n_blocks] = obs[..., : 3 * n_blocks]
    pad[..., -2:] = obs[..., -2:]
    mask = np.arange(max_blocks) < n_blocks
    return pad, mask
