"""Type-checked --set overrides of frozen config dataclasses."""
import pytest

from learnt.config import override
from learnt.errors import ConfigError
from learnt.experiments.l2l_quadratic import config


def test_nested_override_parses_by_type():
    cfg = override(config("quick"), ["train.meta_lr=3e-3", "task.n_problems=7", "train.second_order=true",
                                     "baselines.methods=adam,sgd"])
    assert cfg.train.meta_lr == 0.003 and cfg.task.n_problems == 7 and cfg.train.second_order is True
    assert cfg.baselines.methods == ("adam", "sgd")
    assert config("quick").train.meta_lr == 1e-3  # frozen original untouched


@pytest.mark.parametrize("bad, match", [
    ("train.nope=1", "unknown config key 'train.nope'"),
    ("nope=1", "unknown config key 'nope'"),
    ("train.iterations=ten", "train.iterations='ten': expected an integer"),
    ("train.meta_lr=fast", "expected a number"),
    ("train.second_order=maybe", "expected a boolean"),
    ("train=3", "is a section"),
    ("train.iterations", "expected KEY=VALUE"),
    ("train.iterations=0", "iterations=0; expected >= 1"),
    ("train.objective=foo", "unknown meta-objective 'foo'"),
])
def test_bad_overrides_are_clear_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        override(config("quick"), [bad])
