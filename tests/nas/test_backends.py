"""Backends: choice by name, the Ray backend (skipped without ray) and its clear error."""
import importlib.util

import pytest

from learnt.errors import ConfigError
from learnt.nas import ChildConfig, ChildJob, LocalProcessBackend, SerialBackend, make_backend, train_child
from learnt.nas.space import Architecture, Layer
from learnt.nas.testing import FailingChild

HAVE_RAY = importlib.util.find_spec("ray") is not None
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


@pytest.mark.skipif(HAVE_RAY, reason="ray is installed")
def test_ray_backend_without_ray_names_the_extra():
    with pytest.raises(ConfigError, match=r"learnt\[ray\]"):
        make_backend("ray")


@pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (optional extra learnt[ray])")
def test_ray_backend_trains_children_and_survives_failures(tmp_path):
    with make_backend("ray", workers=2) as backend:
        outs = backend.map(FailingChild(tmp_path, crash=((0, 1),), raise_on=((0, 2),)), JOBS)
    serial = SerialBackend().map(train_child, JOBS[:2])
    assert [o.ok for o in outs] == [True, True, False]
    assert [o.value["acc"] for o in outs[:2]] == [o.value["acc"] for o in serial]  # crashed once, retried
    assert "injected failure" in outs[2].error
