"""The search loop: curriculum, failed children, checkpoints and resume to identical history."""
import pytest
import torch

from learnt.errors import CheckpointError, ConfigError, SearchFailedError
from learnt.nas import (ArchitectureSearch, ChildConfig, LocalProcessBackend, SearchConfig, SearchSpace, SerialBackend,
                        train_child)
from learnt.nas.testing import FailingChild

SPACE = SearchSpace(num_filters=(2, 4), max_layers=3)
TINY_CHILD = ChildConfig(epochs=1, batch_size=256)
CFG = SearchConfig(batches=4, batch_size=3, min_layers=1, max_layers=3, curriculum_every=2, lr=0.05)


def _comparable(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_curriculum_adds_layers_up_to_the_maximum():
    cfg = SearchConfig(batches=20, min_layers=2, max_layers=5, curriculum_every=3, layer_step=2)
    assert [cfg.depth(b) for b in (0, 2, 3, 5, 6, 9, 19)] == [2, 2, 4, 4, 5, 5, 5]
    with pytest.raises(ConfigError, match="max_layers=1 < min_layers=2"):
        SearchConfig(min_layers=2, max_layers=1)
    with pytest.raises(ConfigError, match="exceeds the search space"):
        ArchitectureSearch(SPACE, "controller", SearchConfig(max_layers=4))
    with pytest.raises(ConfigError, match="'evolution'"):
        ArchitectureSearch(SPACE, "evolution", CFG)


@pytest.fixture(scope="module")
def local2():
    with LocalProcessBackend(workers=2) as backend:
        yield backend


def test_interrupted_search_resumes_to_the_same_history(tmp_path, local2):
    full = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=7, backend=local2, workdir=tmp_path / "a")
    full.run()
    assert [h["layers"] for h in full.history] == [1] * 6 + [2] * 6
    assert all(h["ok"] and 0 < h["val_acc"] <= 1 and h["attempts"] == 1 for h in full.history)

    part = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=7, backend=local2, workdir=tmp_path / "b")
    part.run(max_batches=2)  # killed here: all that survives is checkpoint.pt
    assert part.next_batch == 2 and len(part.history) == 6
    del part
    resumed = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=7, backend=local2, workdir=tmp_path / "b")
    assert resumed.next_batch == 2 and resumed.baseline is not None
    resumed.run()
    assert _comparable(resumed.history) == _comparable(full.history)
    assert resumed.baseline == full.baseline
    for (n, p), (_, q) in zip(full.policy.named_parameters(), resumed.policy.named_parameters()):
        assert torch.equal(p, q), n
    # a different seed really is a different search
    other = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=8, backend=SerialBackend())
    other.run(max_batches=1)
    assert [h["tokens"] for h in other.history] != [h["tokens"] for h in full.history[:3]]


def test_a_checkpoint_of_another_search_is_refused(tmp_path):
    s = ArchitectureSearch(SPACE, "random", CFG, TINY_CHILD, seed=1, workdir=tmp_path)
    s.run(max_batches=1)
    with pytest.raises(CheckpointError, match="another run: seed: 1 in the checkpoint, 2 here"):
        ArchitectureSearch(SPACE, "random", CFG, TINY_CHILD, seed=2, workdir=tmp_path)
    fresh = ArchitectureSearch(SPACE, "random", CFG, TINY_CHILD, seed=2, workdir=tmp_path, resume=False)
    assert fresh.next_batch == 0 and fresh.history == []


def test_a_checkpoint_of_the_searchs_earlier_format_still_resumes(tmp_path):
    from learnt.nas.search import LEGACY_FORMAT

    full = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=3)
    full.run()
    part = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=3, workdir=tmp_path)
    part.run(max_batches=2)
    # the file the search wrote before it ran on the one loop (learnt.nas.search/1)
    ident = part.identity()
    ident["search"] = {**ident["search"], "batches": CFG.batches}
    torch.save({"format": LEGACY_FORMAT, "identity": ident, "next_batch": part.next_batch,
                "policy": part.policy.state_dict(), "optimizer": part.optimizer.state_dict(), "baseline": part.baseline,
                "history": part.history, "batch_log": part.batch_log}, tmp_path / "checkpoint.pt")
    (tmp_path / "log.jsonl").unlink()
    resumed = ArchitectureSearch(SPACE, "controller", CFG, TINY_CHILD, seed=3, workdir=tmp_path)
    assert resumed.next_batch == 2
    resumed.run()
    assert _comparable(resumed.history) == _comparable(full.history) and resumed.batch_log == full.batch_log
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["format"] == "learnt.nas.search/2"


def test_failing_children_score_zero_and_the_search_goes_on(tmp_path):
    fn = FailingChild(tmp_path, raise_on=((0, 1),), crash=((1, 0),), in_process=True)
    cfg = SearchConfig(batches=2, batch_size=3, min_layers=1, max_layers=1, lr=0.05)
    s = ArchitectureSearch(SPACE, "controller", cfg, TINY_CHILD, seed=0, train_fn=fn, workdir=tmp_path / "s")
    hist = s.run()
    assert len(hist) == 6
    failed = hist[1]
    assert not failed["ok"] and failed["val_acc"] == 0.0 and failed["reward"] == 0.0 and failed["attempts"] == 2
    assert "injected failure" in failed["error"]
    retried = hist[3]  # crashed once, then succeeded on the retry
    assert retried["ok"] and retried["attempts"] == 2 and retried["val_acc"] > 0
    assert s.batch_log[0]["failed"] == 1 and s.batch_log[1]["failed"] == 0


def test_a_worker_that_dies_is_retried_once_then_scored_as_failed(tmp_path, local2):
    from learnt.nas import ChildJob
    from learnt.nas.space import Architecture, Layer

    jobs = [ChildJob(Architecture((Layer(3, 3, 2),)), k, TINY_CHILD, key=(0, k)) for k in range(4)]
    outs = local2.map(FailingChild(tmp_path, crash=((0, 1),), crash_always=((0, 2),)), jobs)
    assert [o.ok for o in outs] == [True, True, False, True]
    assert outs[1].attempts == 2 and any("terminated" in e or "died" in e for e in outs[1].errors)
    assert outs[2].attempts == 2 and outs[2].value is None and outs[2].error
    # the pool works again afterwards, with results identical to in-process training
    serial = SerialBackend().map(train_child, jobs)
    assert [o.value["acc"] for o in outs if o.ok] == [o.value["acc"] for k, o in enumerate(serial) if k != 2]


def test_a_bad_dataset_name_fails_before_the_first_child(tmp_path):
    with pytest.raises(ConfigError, match="search dataset 'nosuch'"):
        ArchitectureSearch(SPACE, "random", CFG, TINY_CHILD, seed=0, dataset="nosuch", workdir=tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_batch_whose_children_all_fail_stops_the_search_naming_the_cause(tmp_path):
    cfg = SearchConfig(batches=2, batch_size=2, min_layers=1, max_layers=1, lr=0.05)
    fn = FailingChild(tmp_path, raise_on=((0, 0), (0, 1)), in_process=True)
    s = ArchitectureSearch(SPACE, "random", cfg, TINY_CHILD, seed=0, train_fn=fn, workdir=tmp_path / "s")
    with pytest.raises(SearchFailedError, match="every child of batch 0 failed.*injected failure"):
        s.run()
    assert s.history == []
