"""Glyph data set (render, split, cache) and the N-way K-shot sampler."""
import pytest
import torch

from learnt.tasks import glyphs as glyphs_mod
from learnt.fewshot.episodes import ClassSplit, EpisodeSampler
from learnt.fewshot.glyphs import GlyphConfig, load_glyphs


def test_splits_are_disjoint_by_alphabet(tiny_glyphs, tiny_glyph_cfg):
    names = {s: set(split.names) for s, split in tiny_glyphs.items()}
    alph = {s: set(split.alphabets) for s, split in tiny_glyphs.items()}
    assert not names["train"] & names["val"] and not names["train"] & names["test"] and not names["val"] & names["test"]
    assert alph["test"] == set(tiny_glyph_cfg.test_alphabets) and alph["val"] == set(tiny_glyph_cfg.val_alphabets)
    assert not alph["train"] & (alph["val"] | alph["test"])
    assert len(tiny_glyphs["test"]) == 3 * len(tiny_glyph_cfg.test_alphabets)
    imgs = tiny_glyphs["train"].images
    assert imgs.shape[1:] == (6, 1, 28, 28) and imgs.dtype == torch.uint8


def test_drawers_differ_but_stay_recognisable(tiny_glyphs):
    x = tiny_glyphs["train"].images.float() / 255          # (C, D, 1, 28, 28)
    ink = x.mean((2, 3, 4))
    assert (ink > 0.01).all() and (ink < 0.6).all()         # every drawing has strokes, none is a blob
    flat = x.flatten(2)
    same = torch.nn.functional.cosine_similarity(flat[:, 0], flat[:, 1], dim=1)        # two drawers, same class
    other = torch.nn.functional.cosine_similarity(flat[:, 0], flat.roll(1, 0)[:, 1], dim=1)  # different classes
    assert (flat[:, 0] - flat[:, 1]).abs().amax(1).min() > 0.2  # drawers are not copies
    assert same.mean() > other.mean() + 0.1


def test_cache_is_reused_and_keyed(tiny_glyph_cfg, tiny_glyphs, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("re-rendered although the cache exists")
    monkeypatch.setattr(glyphs_mod, "render_glyphs", boom)
    again = load_glyphs(tiny_glyph_cfg)
    assert torch.equal(again["test"].images, tiny_glyphs["test"].images)
    other = GlyphConfig(drawers=7, max_per_alphabet=3, cache_dir=tiny_glyph_cfg.cache_dir)
    assert other.cache_key() != tiny_glyph_cfg.cache_key()
    with pytest.raises(AssertionError, match="re-rendered"):
        load_glyphs(other)


def test_render_is_seeded(tiny_glyph_cfg):
    g1 = glyphs_mod.render_glyphs(GlyphConfig(drawers=2, max_per_alphabet=1, cache_dir=tiny_glyph_cfg.cache_dir))
    g2 = glyphs_mod.render_glyphs(GlyphConfig(drawers=2, max_per_alphabet=1, cache_dir=tiny_glyph_cfg.cache_dir))
    g3 = glyphs_mod.render_glyphs(GlyphConfig(drawers=2, max_per_alphabet=1, seed=1, cache_dir=tiny_glyph_cfg.cache_dir))
    assert torch.equal(g1["images"], g2["images"]) and not torch.equal(g1["images"], g3["images"])


def test_bad_glyph_configs():
    with pytest.raises(ValueError, match="both"):
        GlyphConfig(val_alphabets=("greek",), test_alphabets=("greek",))
    with pytest.raises(ValueError, match="drawers"):
        GlyphConfig(drawers=1)
    with pytest.raises(ValueError, match="alphabet 'klingon'"):
        load_glyphs(GlyphConfig(drawers=2, max_per_alphabet=1, test_alphabets=("klingon",), cache_dir="/tmp/x-unused"))


def test_episode_shapes_labels_and_determinism(tiny_glyphs):
    s = EpisodeSampler(tiny_glyphs["test"], n_way=5, k_shot=2, n_query=3, split="test", seed=0)
    ep = s.episode(4)
    assert ep.support_x.shape == (10, 1, 28, 28) and ep.query_x.shape == (15, 1, 28, 28)
    assert ep.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert torch.bincount(ep.query_y).tolist() == [3] * 5
    assert 0.0 <= float(ep.support_x.min()) and float(ep.support_x.max()) <= 1.0 and ep.support_x.dtype == torch.float32
    again = s.episode(4)
    assert torch.equal(ep.support_x, again.support_x) and torch.equal(ep.query_x, again.query_x)
    assert not torch.equal(ep.support_x, s.episode(5).support_x)
    other_seed = EpisodeSampler(tiny_glyphs["test"], 5, 2, 3, split="test", seed=1).episode(4)
    assert not torch.equal(ep.support_x, other_seed.support_x)
    # support and query images of a class are distinct drawings
    flat_s, flat_q = ep.support_x.flatten(1), ep.query_x.flatten(1)
    assert torch.cdist(flat_s, flat_q).min() > 0


def test_labels_are_remapped_per_episode():
    # class c is filled with the value c: the label of a class must change across episodes
    imgs = torch.arange(8).float().view(8, 1, 1, 1, 1).expand(8, 4, 1, 4, 4).contiguous()
    s = EpisodeSampler(ClassSplit(imgs, [str(i) for i in range(8)]), n_way=3, k_shot=1, n_query=1)
    seen = {}
    for i in range(30):
        ep = s.episode(i)
        for x, y in zip(ep.support_x, ep.support_y):
            seen.setdefault(int(x[0, 0, 0]), set()).add(int(y))
        assert torch.equal(ep.support_x[:, 0, 0, 0], ep.query_x[:, 0, 0, 0])  # query labels follow support labels
    assert any(len(v) > 1 for v in seen.values())


def test_sampler_rejects_bad_requests(tiny_glyphs):
    with pytest.raises(ValueError, match="n_way=50"):
        EpisodeSampler(tiny_glyphs["test"], n_way=50)
    with pytest.raises(ValueError, match="fewer than"):
        EpisodeSampler(tiny_glyphs["test"], n_way=5, k_shot=5, n_query=15)
    with pytest.raises(ValueError, match="k_shot=0"):
        EpisodeSampler(tiny_glyphs["test"], k_shot=0)
