"""Backends: choice by name, retries, the Ray backend (a real two-worker search through it) and
its clear error when ray is missing.

``make test`` installs the ``ray`` extra, so the Ray tests run in CI; without ray they fail
naming the extra rather than being skipped."""
import sys

import pytest

from learnt.errors import ConfigError
from learnt.nas import ChildConfig, ChildJob, LocalProcessBackend, SerialBackend, make_backend, train_child
from learnt.nas.space import Architecture, Layer
from learnt.nas.testing import FailingChild

JOBS = [ChildJob(Architecture((Layer(3, 3, 2),)), k, ChildConfig(epochs=1, batch_size=256), key=(0, k))
        for k in range(3)]


def test_make_backend_by_name():
    assert isinstance(make_backend("serial"), SerialBackend)
    local = make_backend("local", workers=3)
    assert isinstance(local, LocalProcessBackend) and local.workers == 3 and local._pool is None  # lazy
    with pytest.raises(ConfigError, match="'cluster'"):
        make_backend("cluster")
    with pytest.raises(ConfigError, match="workers=0"):
        make_backend("local", workers=0)
    with pytest.raises(ConfigError, match="retries=-1"):
        make_backend("serial", retries=-1)


def test_serial_backend_retries_then_gives_up(tmp_path):
    outs = SerialBackend(retries=1).map(FailingChild(tmp_path, crash=((0, 0),), raise_on=((0, 2),), in_process=True),
                                        JOBS)
    assert [o.ok for o in outs] == [True, True, False]
    assert [o.attempts for o in outs] == [2, 1, 2]
    assert outs[2].errors == ["RuntimeError: injected failure for child (0, 2)"] * 2
    no_retry = SerialBackend(retries=0).map(FailingChild(tmp_path, raise_on=((0, 1),)), JOBS)
    assert [o.ok for o in no_retry] == [True, False, True] and no_retry[1].attempts == 1


def test_ray_backend_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)     # as if ray were not installed
    with pytest.raises(ConfigError, match=r"learnt\[ray\]"):
        make_backend("ray")


@pytest.fixture(scope="module")
def ray2():
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.fail("ray is not installed: pip install -e '.[ray]' (make test installs it)")
    with make_backend("ray", workers=2) as backend:
        yield backend


def test_ray_backend_trains_children_and_survives_failures(tmp_path, ray2):
    outs = ray2.map(FailingChild(tmp_path, crash=((0, 1),), raise_on=((0, 2),)), JOBS)
    serial = SerialBackend().map(train_child, JOBS[:2])
    assert [o.ok for o in outs] == [True, True, False]
    assert [o.value["acc"] for o in outs[:2]] == [o.value["acc"] for o in serial]  # crashed once, retried
    assert "injected failure" in outs[2].error


def test_a_controller_search_through_two_ray_workers_matches_the_serial_one(tmp_path, ray2):
    from learnt.nas import ArchitectureSearch, SearchConfig, SearchSpace

    space = SearchSpace(num_filters=(2, 4), max_layers=2)
    cfg = SearchConfig(batches=2, batch_size=2, min_layers=1, max_layers=2, curriculum_every=1, lr=0.05)
    child = ChildConfig(epochs=1, batch_size=256)
    on_ray = ArchitectureSearch(space, "controller", cfg, child, seed=4, backend=ray2, workdir=tmp_path)
    on_ray.run()
    here = ArchitectureSearch(space, "controller", cfg, child, seed=4, backend=SerialBackend())
    here.run()
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert len(on_ray.history) == 4 and all(h["ok"] and 0 < h["val_acc"] <= 1 for h in on_ray.history)
    assert strip(on_ray.history) == strip(here.history) and on_ray.baseline == here.baseline
    assert (tmp_path / "checkpoint.pt").is_file() and len((tmp_path / "log.jsonl").read_text().splitlines()) == 2
