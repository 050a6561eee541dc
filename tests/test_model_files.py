"""One model-file format for every shipped model kind, and the older formats still load."""
import json

import pytest
import torch

from learnt.errors import CheckpointError
from learnt.io import MODEL_FORMAT, atomic_torch_save, read_model, safe_torch_load


def _small_method():
    from learnt.fewshot.baselines import ProtoNet
    from learnt.fewshot.learner import ConvLearner
    return ProtoNet(ConvLearner(1, 16, 2, filters=4))


def test_rules_proposers_and_fewshot_methods_share_one_writer(tmp_path):
    from learnt.blackbox.proposer import LSTMProposer
    from learnt.fewshot.api import save_method
    from learnt.learned import AdamController, save_rule
    save_rule(AdamController(), tmp_path / "rule.pt")
    save_rule(LSTMProposer(max_dim=2, hidden=4, layers=1), tmp_path / "proposer.pt")
    save_method(_small_method(), tmp_path / "method.pt", {"score": 0.5})
    kinds = {}
    for name in ("rule", "proposer", "method"):
        raw = safe_torch_load(tmp_path / f"{name}.pt")
        assert raw["format"] == MODEL_FORMAT and set(raw) == {"format", "kind", "config", "state_dict", "meta"}
        kinds[name] = raw["kind"]
    assert kinds == {"rule": "adam-controller", "proposer": "bbo-lstm", "method": "fewshot-method"}
    assert read_model(tmp_path / "method.pt")["meta"] == {"score": 0.5}
    with pytest.raises(CheckpointError, match="expected one of"):
        read_model(tmp_path / "rule.pt", kinds=["fewshot-method"])


def test_older_rule_and_method_files_still_load(tmp_path):
    from learnt.fewshot.api import load_method
    from learnt.learned import AdamController, load_rule
    rule = AdamController(base_lr=3e-3)
    atomic_torch_save({"format": "learnt.rule/1", "kind": rule.kind, "config": rule.config(),
                       "state_dict": rule.state_dict(), "meta": {}}, tmp_path / "old-rule.pt")
    assert load_rule(tmp_path / "old-rule.pt").base_lr == 3e-3
    m = _small_method()
    with torch.no_grad():
        next(iter(m.parameters())).add_(1.0)
    atomic_torch_save({"format": "learnt.fewshot.method/1", "method_config": json.dumps(m.config()),
                       "state": m.state_dict(), "iteration": 7}, tmp_path / "old-method.pt")
    back = load_method(tmp_path / "old-method.pt")
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), m.state_dict().values()))
    assert read_model(tmp_path / "old-method.pt")["meta"] == {"iteration": 7}
    atomic_torch_save({"format": "learnt.fewshot.method/1", "state": {}}, tmp_path / "torn.pt")
    with pytest.raises(CheckpointError, match="damaged"):
        load_method(tmp_path / "torn.pt")
