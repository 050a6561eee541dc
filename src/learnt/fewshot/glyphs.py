"""The Hershey glyph set as few-shot class splits (rendering: :mod:`learnt.tasks.glyphs`)."""
from __future__ import annotations

from learnt.fewshot.episodes import ClassSplit
from learnt.tasks.glyphs import (DEFAULT_CACHE, RENDER_VERSION, TEST_ALPHABETS, VAL_ALPHABETS, GlyphConfig,
                                 hershey_glyphs, load_rendered, render_drawers, render_glyphs)

__all__ = ["DEFAULT_CACHE", "RENDER_VERSION", "TEST_ALPHABETS", "VAL_ALPHABETS", "GlyphConfig", "hershey_glyphs",
           "load_glyphs", "load_rendered", "render_drawers", "render_glyphs"]


def load_glyphs(cfg: GlyphConfig = GlyphConfig(), progress: bool = False) -> dict[str, ClassSplit]:
    """The glyph data set split by alphabet: ``{"train", "val", "test"} -> ClassSplit``.

    Renders once and caches under ``cfg.cache_dir``; later calls load the cache.

    Example:
        >>> splits = load_glyphs(GlyphConfig(drawers=4, cache_dir="/tmp/learnt-doctest"))
        >>> sorted(splits), splits["test"].image_shape
        (['test', 'train', 'val'], (1, 28, 28))
    """
    data = load_rendered(cfg, progress)
    alph, split_of = data["alphabets"], data["split"]
    out = {}
    for s in ("train", "val", "test"):
        idx = [i for i, x in enumerate(split_of) if x == s]
        out[s] = ClassSplit(data["images"][idx], [data["names"][i] for i in idx], [alph[i] for i in idx])
    return out
