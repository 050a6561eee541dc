"""An Omniglot-like data set rendered offline from the Hershey stroke fonts.

Every distinct glyph of the 32 Hershey fonts (after removing glyphs that coincide up to
translation and scale) is a *class*; the font it first appears in is its *alphabet*.
Each class is drawn by ``drawers`` simulated people: a random affine map (rotation,
shear, anisotropic scale, translation), a smooth random wobble of the pen path, vertex
jitter and a random pen width, rendered anti-aliased at ``image_size`` x ``image_size``
(strokes 1, background 0). As in Omniglot the classes are split by alphabet: evaluation
alphabets give meta-test classes, background alphabets give meta-train and (a few held-out
alphabets) meta-validation classes, so the three class sets are disjoint.

The render is cached on disk (``cache_dir``, atomic write) keyed by every field that
changes the pixels; later loads take well under a second.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from learnt.io import atomic_torch_save, safe_torch_load
from learnt.seeding import make_generator

log = logging.getLogger(__name__)

RENDER_VERSION = 1
DEFAULT_CACHE = os.path.join("~", ".cache", "learnt", "glyphs")
TEST_ALPHABETS = ("japanese", "cyrilc_1", "music", "gothicita", "greek")
VAL_ALPHABETS = ("astrology", "gothgrt", "timesib")


@dataclass(frozen=True)
class GlyphConfig:
    """How the glyph data set is rendered and split (every field but ``cache_dir`` is in the cache key)."""

    image_size: int = 28
    drawers: int = 20
    seed: int = 0
    width_low: float = 1.0     # pen width in pixels at 28x28 (scaled with image_size)
    width_high: float = 2.2
    rotation_deg: float = 12.0
    shear: float = 0.15
    jitter: float = 0.02       # vertex jitter, fraction of the glyph's extent
    wobble: float = 0.03       # smooth pen-path wobble amplitude, fraction of the extent
    max_per_alphabet: int = 0  # keep only the first N classes of each alphabet (0 = all); for tiny tests
    val_alphabets: tuple[str, ...] = VAL_ALPHABETS
    test_alphabets: tuple[str, ...] = TEST_ALPHABETS
    cache_dir: str = DEFAULT_CACHE

    def __post_init__(self) -> None:
        if self.max_per_alphabet < 0:
            raise ValueError(f"max_per_alphabet={self.max_per_alphabet}; expected >= 0 (0 keeps every class)")
        if self.image_size < 8 or self.drawers < 2:
            raise ValueError(f"image_size={self.image_size}, drawers={self.drawers}; expected image_size >= 8 and drawers >= 2")
        if not 0 < self.width_low <= self.width_high:
            raise ValueError(f"pen width range ({self.width_low}, {self.width_high}); expected 0 < low <= high")
        if set(self.val_alphabets) & set(self.test_alphabets):
            raise ValueError(f"alphabets {sorted(set(self.val_alphabets) & set(self.test_alphabets))} are in both "
                             "val_alphabets and test_alphabets; expected disjoint sets")

    def cache_key(self) -> str:
        d = asdict(self)
        d.pop("cache_dir")
        d["version"] = RENDER_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def hershey_glyphs() -> tuple[tuple[str, str, list[list[tuple[float, float]]]], ...]:
    """All distinct Hershey glyphs as ``(alphabet, char code, strokes)``, in a fixed order
    (parsed once per process; treat as read-only).

    Glyphs equal up to translation and scale (after rounding to a 1/20 grid of the extent)
    are kept once, under the first font that has them.
    """
    from HersheyFonts import HersheyFonts

    h = HersheyFonts()
    seen: set = set()
    out = []
    for font in h.default_font_names:
        h.load_default_font(font)
        for ch, glyph in h.all_glyphs.items():
            strokes = [list(s) for s in glyph.strokes if len(s) > 0]
            pts = [p for s in strokes for p in s]
            if len(pts) < 2:
                continue
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
            sc = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
            key = tuple(tuple((round((x - cx) / sc * 20), round((y - cy) / sc * 20)) for x, y in s) for s in strokes)
            if key in seen:
                continue
            seen.add(key)
            out.append((font, f"{ord(ch):04x}", strokes))
    return tuple(out)


def _segments(strokes: list[list[tuple[float, float]]]) -> Tensor:
    """Strokes -> (S, 2, 2) segments, centred and scaled so the larger extent is 1; a
    one-point stroke becomes a zero-length segment (a dot)."""
    segs = []
    for s in strokes:
        if len(s) == 1:
            segs.append([s[0], s[0]])
        segs.extend([[s[i], s[i + 1]] for i in range(len(s) - 1)])
    t = torch.tensor(segs, dtype=torch.float32)
    pts = t.reshape(-1, 2)
    lo, hi = pts.min(0).values, pts.max(0).values
    return (t - (lo + hi) / 2) / (hi - lo).max().clamp_min(1e-6)


def render_drawers(segs: Tensor, cfg: GlyphConfig, g: torch.Generator) -> Tensor:
    """Draw one glyph ``cfg.drawers`` times.

    Shapes: ``segs`` (S, 2, 2) normalised segments -> (drawers, size, size) float in [0, 1].
    """
    D, n = cfg.drawers, cfg.image_size
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    p = segs.reshape(1, -1, 2).expand(D, -1, -1)                                  # (D, 2S, 2)
    # smooth wobble: a random low-frequency displacement field of the pen path
    freq = (u(D, 2, 2) * 2 + 1) * math.pi                                        # (D, 2 field dims, 2 coords)
    phase = u(D, 2) * 2 * math.pi
    wob = torch.sin(torch.einsum("dpc,dkc->dpk", p, freq) + phase[:, None, :]) * cfg.wobble
    p = p + wob + torch.randn(D, p.shape[1], 2, generator=g) * cfg.jitter
    ang = (u(D) * 2 - 1) * math.radians(cfg.rotation_deg)
    sh = (u(D) * 2 - 1) * cfg.shear
    scale = (0.62 + 0.2 * u(D))[:, None] * (1 + 0.1 * (u(D, 2) * 2 - 1))          # (D, 2)
    c, s = torch.cos(ang), torch.sin(ang)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)    # (D, 2, 2)
    shm = torch.eye(2).repeat(D, 1, 1)
    shm[:, 0, 1] = sh
    A = rot @ shm * scale[:, :, None] * n
    shift = n / 2 + (u(D, 2) * 2 - 1) * 0.06 * n
    p = torch.einsum("dij,dpj->dpi", A, p) + shift[:, None, :]
    a, b = p[:, 0::2], p[:, 1::2]                                                 # (D, S, 2)
    ys, xs = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)                       # (P, 2)
    ab = b - a
    t = ((pix[None, :, None, :] - a[:, None]) * ab[:, None]).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)[:, None]
    near = a[:, None] + t.clamp(0, 1)[..., None] * ab[:, None]                     # (D, P, S, 2)
    d = (pix[None, :, None, :] - near).norm(dim=-1).min(-1).values                # (D, P)
    width = (cfg.width_low + (cfg.width_high - cfg.width_low) * u(D)) * n / 28
    img = (width[:, None] / 2 + 0.5 - d).clamp(0, 1)
    return img.reshape(D, n, n)


def render_glyphs(cfg: GlyphConfig, progress: bool = False) -> dict:
    """Render every class (no cache): images uint8 (n_classes, drawers, 1, size, size), names, alphabets."""
    glyphs = list(hershey_glyphs())
    if cfg.max_per_alphabet > 0:
        kept, per = [], {}
        for gl in glyphs:
            per[gl[0]] = per.get(gl[0], 0) + 1
            if per[gl[0]] <= cfg.max_per_alphabet:
                kept.append(gl)
        glyphs = kept
    imgs = torch.empty(len(glyphs), cfg.drawers, 1, cfg.image_size, cfg.image_size, dtype=torch.uint8)
    it = range(len(glyphs))
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="render glyphs", leave=False)
    for i in it:
        g = make_generator(cfg.seed, "train", i, 11)
        imgs[i, :, 0] = (render_drawers(_segments(glyphs[i][2]), cfg, g) * 255).round().to(torch.uint8)
    return {"images": imgs, "names": [f"{a}/{c}" for a, c, _ in glyphs], "alphabets": [a for a, _, _ in glyphs],
            "cache_key": cfg.cache_key()}


def load_rendered(cfg: GlyphConfig = GlyphConfig(), progress: bool = False) -> dict:
    """The rendered glyph set (see :func:`render_glyphs`) plus ``"split"``, the split
    (``"train"`` / ``"val"`` / ``"test"``) of every class by its alphabet.

    Renders once and caches under ``cfg.cache_dir``; later calls load the cache.
    """
    path = Path(cfg.cache_dir).expanduser() / f"hershey-{cfg.cache_key()}.pt"
    data = None
    if path.exists():
        try:
            data = safe_torch_load(path)
            if data.get("cache_key") != cfg.cache_key():
                data = None
        except Exception as e:  # a corrupt cache is re-rendered, never trusted
            log.warning("glyph cache %s unreadable (%s); re-rendering", path, e)
            data = None
    if data is None:
        log.info("rendering the Hershey glyph set to %s", path)
        data = render_glyphs(cfg, progress)
        atomic_torch_save(data, path)
    alph = data["alphabets"]
    known = set(alph)
    for a in (*cfg.val_alphabets, *cfg.test_alphabets):
        if a not in known:
            raise ValueError(f"alphabet {a!r} is not in the glyph set; expected one of {sorted(known)}")
    data["split"] = ["test" if a in cfg.test_alphabets else "val" if a in cfg.val_alphabets else "train" for a in alph]
    return data
