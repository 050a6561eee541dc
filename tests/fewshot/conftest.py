import pytest

from learnt.fewshot.glyphs import GlyphConfig, load_glyphs


@pytest.fixture(scope="session")
def tiny_glyph_cfg(tmp_path_factory):
    """3 classes per alphabet, 6 drawers: renders in about a second (after the font parse)."""
    return GlyphConfig(drawers=6, max_per_alphabet=3, cache_dir=str(tmp_path_factory.mktemp("glyph-cache")))


@pytest.fixture(scope="session")
def tiny_glyphs(tiny_glyph_cfg):
    return load_glyphs(tiny_glyph_cfg)
