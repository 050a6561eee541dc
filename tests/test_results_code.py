"""results.json records the code it came from; the README generator says when it changed."""
from learnt.experiments import EXPERIMENTS
from learnt.experiments.results import _code_digest, code_fingerprint, stale_files


def test_the_fingerprint_follows_imports_including_lazy_and_relative_ones():
    e = EXPERIMENTS["lopt-suite"]
    code = code_fingerprint([e.evaluate.__module__])
    # lopt_suite imports lopt_train at the top and the learned rules through it
    assert {"experiments/lopt_suite.py", "experiments/lopt_train.py", "learned/adam_controller.py",
            "meta/loop.py", "tasks/net_family.py"} <= set(code)
    # other experiments are not dependencies
    assert not {"experiments/nas.py", "experiments/fewshot.py", "experiments/__init__.py"} & set(code)
    assert stale_files(code) == []


def test_docstrings_and_comments_do_not_change_the_digest_code_does(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""Module."""\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    b.write_text('"""Other words."""\n# a comment\ndef f(x):\n    return x + 1   # same code\n')
    c.write_text('def f(x):\n    return x + 2\n')
    assert _code_digest(a) == _code_digest(b) != _code_digest(c)


def test_a_changed_or_missing_file_is_reported_stale():
    e = EXPERIMENTS["nas-digits"]
    code = code_fingerprint([e.evaluate.__module__])
    code["nas/search.py"] = "0" * 16
    code["nas/gone.py"] = "1" * 16
    assert stale_files(code) == ["nas/search.py", "nas/gone.py"]
