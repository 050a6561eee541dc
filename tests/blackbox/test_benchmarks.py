"""Benchmarks on the unit cube and their perturbed copies: minima, bijections, determinism."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from learnt.blackbox import BENCHMARKS, BenchmarkFamily, PerturbedBenchmark, get_benchmark, reflect_into_cube
from learnt.seeding import make_generator

F64 = torch.float64
PUBLISHED_MIN = {"branin": 0.397887, "goldstein_price": 3.0, "hartmann3": -3.86278, "hartmann6": -3.32237}
DIMS = {"branin": 2, "goldstein_price": 2, "hartmann3": 3, "hartmann6": 6}


# ------------------------------------------------------------------ base functions


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_known_minimum_is_reached_at_every_known_minimiser(name):
    b = get_benchmark(name)
    assert b.dim == DIMS[name]
    assert b.min_value == pytest.approx(PUBLISHED_MIN[name], rel=1e-5)
    mins = b.unit_minimisers()
    assert ((mins >= 0) & (mins <= 1)).all()
    vals = b(mins)
    assert vals.shape == (len(b.minimisers),)
    for v in vals.tolist():
        assert v == pytest.approx(PUBLISHED_MIN[name], rel=1e-4)
        assert v == pytest.approx(b.min_value, rel=1e-9)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_nothing_in_the_cube_is_below_the_known_minimum(name):
    b = get_benchmark(name)
    u = torch.rand(20_000, b.dim, generator=make_generator(0, "test", 0), dtype=F64)
    near = b.unit_minimisers()[:1] + 1e-3 * torch.randn(200, b.dim, generator=make_generator(0, "test", 1), dtype=F64)
    vals = torch.cat([b(u), b(near.clamp(0, 1))])
    assert vals.min().item() >= b.min_value - 1e-9
    assert vals.max().item() > b.min_value + 0.1  # not a constant


def test_unit_cube_is_mapped_onto_the_usual_domain():
    """Values at explicit unit-cube points equal the textbook values at the mapped points."""
    branin, gp = get_benchmark("branin"), get_benchmark("goldstein_price")
    # Branin at (-5, 0): (0 - b 25 - 5c - 6)^2 + 10 (1 - t) cos(-5) + 10
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    want = (-b * 25 - 5 * c - 6) ** 2 + 10 * (1 - t) * math.cos(-5) + 10
    assert branin(torch.tensor([0.0, 0.0], dtype=F64)).item() == pytest.approx(want, rel=1e-12)
    assert gp(torch.tensor([0.5, 0.5], dtype=F64)).item() == pytest.approx(600.0, rel=1e-12)  # GP(0, 0)
    assert gp(torch.tensor([0.5, 0.25], dtype=F64)).item() == pytest.approx(3.0, rel=1e-12)  # GP(0, -1)
    h3 = get_benchmark("hartmann3")  # already on [0, 1]^3: the map is the identity
    z = torch.rand(4, 3, dtype=F64)
    torch.testing.assert_close(h3.to_domain(z), z)
    torch.testing.assert_close(branin.from_domain(branin.to_domain(z[:, :2])), z[:, :2])


def test_unknown_benchmark_and_wrong_width_are_named():
    with pytest.raises(ValueError, match="rosenbrock"):
        get_benchmark("rosenbrock")
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        get_benchmark("hartmann6")(torch.rand(3, 5))


# ------------------------------------------------------------------ perturbed copies


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_perturbed_copies_reach_exactly_their_min_value_at_the_minimiser(name):
    fam = BenchmarkFamily(name, n_functions=32, translate=0.3, scale_range=(0.2, 5.0), dtype=F64)
    fns = fam.sample(make_generator(0, "test", 0))
    base = get_benchmark(name)
    assert fns.dim == base.dim and fns.min_value.shape == (32,) and fns.minimiser.shape == (32, base.dim)
    torch.testing.assert_close(fns.min_value, fns.scale * base.min_value)
    assert ((fns.minimiser >= 0) & (fns.minimiser <= 1)).all()
    torch.testing.assert_close(fns(fns.minimiser), fns.min_value, rtol=1e-10, atol=1e-12)
    # nothing in the cube goes below it (reflection only re-uses values of the base on the cube)
    x = torch.rand(32, 2000, base.dim, generator=make_generator(0, "test", 1), dtype=F64)
    assert (fns(x).min(dim=1).values >= fns.min_value - 1e-9).all()
    # the copies really differ from the base and from each other
    assert fns.minimiser.unique(dim=0).shape[0] > 16


def test_min_value_stays_exact_in_float32_and_for_the_clamp_boundary():
    for boundary in ("reflect", "clamp"):
        fns = BenchmarkFamily("hartmann6", n_functions=16, translate=0.5, boundary=boundary).sample(make_generator(0, "val", 0))
        assert fns.min_value.dtype == torch.float32 and fns.boundary == boundary
        torch.testing.assert_close(fns(fns.minimiser), fns.min_value, rtol=1e-5, atol=1e-6)


def test_shift_is_within_translate_and_keeps_the_base_minimiser_inside():
    fns = BenchmarkFamily("branin", n_functions=200, translate=0.4, dtype=F64).sample(make_generator(0, "train", 0))
    assert (fns.shift.abs() <= 0.4).all() and fns.shift.abs().max() > 0.3
    back = fns.to_base(fns.minimiser.unsqueeze(1)).squeeze(1)  # the base minimiser each copy chose
    known = get_benchmark("branin").unit_minimisers()
    dist = (back.unsqueeze(1) - known).abs().amax(-1).min(dim=1).values
    assert (dist < 1e-12).all()
    chosen = (back.unsqueeze(1) - known).abs().amax(-1).argmin(dim=1)
    assert set(chosen.tolist()) == {0, 1, 2}  # every Branin minimiser gets used


def test_reflection_and_clamping_boundaries():
    y = torch.tensor([-0.3, -0.0, 0.2, 1.0, 1.25, 1.9], dtype=F64)
    torch.testing.assert_close(reflect_into_cube(y), torch.tensor([0.3, 0.0, 0.2, 1.0, 0.75, 0.1], dtype=F64))
    base = get_benchmark("hartmann3")
    perm, flip = torch.arange(3).expand(1, 3), torch.zeros(1, 3, dtype=torch.bool)
    shift = torch.tensor([[0.3, -0.2, 0.0]], dtype=F64)
    x = torch.tensor([[0.1, 0.9, 0.5]], dtype=F64)  # x - shift = (-0.2, 1.1, 0.5)
    for boundary, u in (("reflect", [0.2, 0.9, 0.5]), ("clamp", [0.0, 1.0, 0.5])):
        fns = PerturbedBenchmark(base, perm, flip, shift, torch.tensor([2.0], dtype=F64), base.unit_minimisers(), boundary)
        torch.testing.assert_close(fns(x), 2.0 * base(torch.tensor([u], dtype=F64)))


def test_without_perturbations_copies_equal_the_base():
    fam = BenchmarkFamily("hartmann6", n_functions=4, translate=0.0, scale_range=(1.0, 1.0), flip=False,
                          permute=False, dtype=F64)
    fns = fam.sample(make_generator(0, "train", 0))
    assert not fns.flip.any() and torch.equal(fns.perm, torch.arange(6).expand(4, 6))
    x = torch.rand(4, 10, 6, dtype=F64)
    torch.testing.assert_close(fns(x), get_benchmark("hartmann6")(x))


def test_scaling_multiplies_the_output():
    kw = dict(n_functions=64, translate=0.2, dtype=F64)
    scaled = BenchmarkFamily("hartmann3", scale_range=(0.5, 2.0), **kw).sample(make_generator(0, "train", 5))
    assert (scaled.scale >= 0.5).all() and (scaled.scale <= 2.0).all()
    assert (scaled.scale < 0.8).any() and (scaled.scale > 1.5).any()
    unit = PerturbedBenchmark(scaled.base, scaled.perm, scaled.flip, scaled.shift, torch.ones(64, dtype=F64),
                              scaled.base.unit_minimisers().expand(64, 3))
    x = torch.rand(64, 5, 3, dtype=F64)
    torch.testing.assert_close(scaled(x), scaled.scale[:, None] * unit(x))


def test_flips_and_permutations_are_bijections_of_the_cube():
    """With no translation, the input map sends the grid {0, 1/4, ..., 1}^d onto itself
    (a bijection of a finite set) and from_base inverts it on random points."""
    fam = BenchmarkFamily("hartmann3", n_functions=32, translate=0.0, dtype=F64)
    fns = fam.sample(make_generator(0, "train", 3))
    assert fns.flip.any() and not fns.flip.all()
    assert not torch.equal(fns.perm, torch.arange(3).expand(32, 3))
    assert len({tuple(p) for p in fns.perm.tolist()}) == 6  # all 3! permutations occur
    grid = torch.tensor(list(itertools.product([0, 0.25, 0.5, 0.75, 1.0], repeat=3)), dtype=F64)  # (125, 3)
    mapped = fns.to_base(grid.expand(32, -1, -1))
    for k in range(32):
        assert torch.equal(torch.unique(mapped[k], dim=0), torch.unique(grid, dim=0))
    x = torch.rand(32, 50, 3, dtype=F64)
    u = fns.to_base(x)
    assert ((u >= 0) & (u <= 1)).all()
    torch.testing.assert_close(fns.from_base(u), x, rtol=0, atol=1e-12)
    # the map is the one documented: y = x[perm], then flip
    k = int(torch.nonzero(fns.flip.any(1) & (fns.perm != torch.arange(3)).any(1))[0])
    want = x[k][:, fns.perm[k]]
    want = torch.where(fns.flip[k], 1 - want, want)
    torch.testing.assert_close(u[k], want)


def test_shapes_gradients_and_errors():
    fns = BenchmarkFamily("goldstein_price", n_functions=3).sample(make_generator(0, "train", 0))
    x = torch.rand(3, 7, 2, requires_grad=True)
    y = fns(x)
    assert y.shape == (3, 7) and fns(x[:, 0]).shape == (3,)
    torch.testing.assert_close(fns(x[:, 2]), y[:, 2])
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(3, 7, 3\)"):
        fns(torch.rand(3, 7, 3))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        fns(torch.rand(4, 2))


def test_same_generator_seed_gives_identical_copies():
    fam = BenchmarkFamily("hartmann6", n_functions=8, translate=0.2, dtype=F64)
    a, b = fam.sample(make_generator(2, "test", 1)), fam.sample(make_generator(2, "test", 1))
    c = fam.sample(make_generator(2, "train", 1))
    for name in ("perm", "flip", "shift", "scale", "minimiser", "min_value"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.shift, c.shift) and not torch.equal(a.scale, c.scale)
    x = torch.rand(8, 3, 6, dtype=F64)
    assert torch.equal(a(x), b(x))
    assert fam.sample(make_generator(2, "test", 1), n_functions=3).n_functions == 3


@pytest.mark.parametrize("kw, word", [
    (dict(name="ackley"), "ackley"), (dict(translate=1.0), "translate=1.0"), (dict(translate=-0.1), "translate"),
    (dict(scale_range=(0.0, 1.0)), "scale_range"), (dict(scale_range=(2.0, 1.0)), "scale_range"),
    (dict(boundary="wrap"), "wrap"), (dict(n_functions=0), "n_functions=0"),
])
def test_family_rejects_bad_values_by_name(kw, word):
    with pytest.raises(ValueError, match=word):
        BenchmarkFamily(**{"name": "branin", **kw})


def test_perturbed_benchmark_validates_its_parts():
    base = get_benchmark("branin")
    ok = dict(perm=torch.tensor([[0, 1]]), flip=torch.zeros(1, 2, dtype=torch.bool), shift=torch.zeros(1, 2),
              scale=torch.ones(1), base_minimiser=base.unit_minimisers(torch.float32)[:1])
    with pytest.raises(ValueError, match="permutations"):
        PerturbedBenchmark(base, **{**ok, "perm": torch.tensor([[1, 1]])})
    with pytest.raises(ValueError, match="positive"):
        PerturbedBenchmark(base, **{**ok, "scale": -torch.ones(1)})
    with pytest.raises(ValueError, match="shift"):
        PerturbedBenchmark(base, **{**ok, "shift": torch.zeros(1, 3)})
