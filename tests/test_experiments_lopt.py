"""lopt-suite and the default optimizer's meta-training end to end on tiny budgets."""
import json
import math

import pytest
import torch

from learnt.cli import main
from learnt.experiments.lopt_suite import PROBLEMS, steps_to_reach, summary_rows
from learnt.learned import load_rule, save_rule
from learnt.tasks.net_family import NetFamily

COMMON = ["--quick", "--no-progress", "--device", "cpu"]
SUITE = ["--set", "suite.problems=logreg-256d,linreg-cond1e5", "--set", "suite.steps_scale=0.03",
         "--set", "suite.seeds=2", "--set", "suite.lr_grid=0.001,0.1", "--set", "suite.sgd_grid=0.01,0.1"]


def _rows(path):
    res = json.loads(path.read_text())
    return res, [r for r in res["rows"] if "wall" not in r["metric"]]


def test_suite_writes_rows_for_every_method_and_is_seeded(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(a), *COMMON, *SUITE]) == 0
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(b), *COMMON, *SUITE]) == 0
    res, rows_a = _rows(a / "results.json")
    _, rows_b = _rows(b / "results.json")
    assert rows_a == rows_b                                            # same seed, same numbers
    methods = {"adam@1e-3", "adamw@1e-3", "adam-tuned", "adamw-tuned", "sgdm-tuned", "default"}
    per_problem = {(r["setting"], r["method"]) for r in rows_a if r["setting"] != "suite"}
    assert per_problem == {(p, m) for p in ("logreg-256d", "linreg-cond1e5") for m in methods}
    tuned = next(r for r in rows_a if r["method"] == "adam-tuned" and r["metric"] == "final_train_loss")
    assert tuned["lr"] in (0.001, 0.1) and tuned["n"] == 2
    suite = {r["metric"] for r in rows_a if r["setting"] == "suite"}
    assert {"won_vs_tuned_adam", "iqm_log10_loss_ratio", "median_speedup", "diverged_problems"} <= suite
    assert (a / "lopt_suite_curves.png").exists()
    assert set(res["problems"]) == {"logreg-256d", "linreg-cond1e5"}
    c = tmp_path / "c"
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(c), "--seed", "1", *COMMON, *SUITE]) == 0
    assert _rows(c / "results.json")[1] != rows_a                       # another seed, other numbers


def test_suite_rerun_reuses_each_methods_cached_runs(tmp_path):
    """A rerun (after a kill, or with a new learned rule) recomputes only the missing or changed
    methods' runs and scores exactly like an uninterrupted run."""
    a = tmp_path / "a"
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(a), *COMMON, *SUITE]) == 0
    _, rows = _rows(a / "results.json")
    cache = a / "problems" / "logreg-256d"
    assert {p.stem for p in cache.glob("*.json")} == {"adam@1e-3", "adamw@1e-3", "adam-tuned", "adamw-tuned", "sgdm-tuned", "default"}
    kept = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json") if p.stem != "default"}
    (cache / "default.json").unlink()                                   # as if killed before it was written
    (a / "problems" / "linreg-cond1e5" / "adam-tuned.json").write_text('{"fingerprint": "x", "cur')   # torn write
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(a), *COMMON, *SUITE]) == 0
    assert _rows(a / "results.json")[1] == rows
    assert (cache / "default.json").exists()
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json") if p.stem != "default"} == kept
    stamp = json.loads((cache / "adam-tuned.json").read_text())["fingerprint"]
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(a), "--seed", "3", *COMMON, *SUITE]) == 0
    assert json.loads((cache / "adam-tuned.json").read_text())["fingerprint"] != stamp   # another seed: nothing reused


def test_suite_problems_are_outside_the_meta_training_distribution():
    """The held-out claims of the table hold: the family never draws what these problems have."""
    from learnt.tasks import nets
    assert len({p.name for p in PROBLEMS}) == len(PROBLEMS) >= 15 and all(p.held_out and p.steps >= 1000 for p in PROBLEMS)
    fam = NetFamily()
    depth = width = horizon = 0
    acts = set()
    for i in range(300):
        task = fam.sample(torch.Generator().manual_seed(i))
        horizon = max(horizon, task.horizon)
        for m in task.module.modules():
            if isinstance(m, nets.MLP):
                depth = max(depth, len(m.hidden))
                width = max([width] + [layer[0].out_features for layer in m.hidden])
            acts.add(type(m).__name__)
    by_name = {p.name: p for p in PROBLEMS}
    assert len(by_name["mlp-relu-depth6"].build().hidden) > depth
    assert by_name["mlp-relu-wide512"].build().hidden[0][0].out_features > width
    assert by_name["mlp-gelu-long3000"].steps > horizon
    assert not {"SiLU", "ELU", "LeakyReLU", "Softplus", "BagOfEmbeddings"} & acts
    assert not any(isinstance(m, nets.ConvNet) and m.residual for i in range(50)
                   for m in fam.sample(torch.Generator().manual_seed(i)).module.modules())


def test_unknown_problem_is_a_one_line_error(tmp_path, capsys):
    assert main(["evaluate", "lopt-suite", "--pretrained", "--out", str(tmp_path), *COMMON,
                 "--set", "suite.problems=resnet50"]) == 2
    assert "resnet50" in capsys.readouterr().err


def test_speedup_and_summary_metrics():
    curve = torch.linspace(1, 0, 11).unsqueeze(1).repeat(1, 2).numpy()      # reaches 0.5 at step 5
    assert list(steps_to_reach(curve, curve[5], 1)) == [5.0, 5.0]
    assert list(steps_to_reach(curve, curve[5] - 1, 1)) == [11.0, 11.0]       # never: len(curve)
    pp = {f"p{i}": {"adam-tuned": {"train_loss": 1.0, "diverged": False, "speedup": 1.0, "wall_vs_adam": 1.0},
                    "adam@1e-3": {"train_loss": 2.0, "diverged": False, "speedup": 0.5, "wall_vs_adam": 1.0},
                    "x": {"train_loss": 0.5 if i < 3 else 4.0, "diverged": i == 3, "speedup": 2.0, "wall_vs_adam": 1.5}}
          for i in range(4)}
    rows = {(r["method"], r["metric"]): r["mean"] for r in summary_rows(pp, ["x"])}
    assert rows[("x", "won_vs_tuned_adam")] == 0.75 and rows[("x", "won_vs_adam_1e-3")] == 0.75
    assert rows[("x", "diverged_problems")] == 0.25 and rows[("x", "median_speedup")] == 2.0
    assert rows[("x", "iqm_log10_loss_ratio")] == pytest.approx(-0.30103)    # the middle two: log10(0.5)


def test_meta_training_writes_a_loadable_controller_and_resumes(tmp_path):
    out = tmp_path / "m"
    args = ["meta-train", "lopt-suite", "--out", str(out), *COMMON, "--set", "train.iterations=2",
            "--set", "train.val_every=1", "--set", "train.truncation=20", "--set", "train.n_pairs=1",
            "--set", "family.max_horizon=40", "--set", "family.min_horizon=30", "--set", "val_tasks=1"]
    assert main(args) == 0
    rule = load_rule(out / "meta" / "best.pt", expected_kind="adam-controller")
    selected = torch.load(out / "meta" / "selected.pt", weights_only=True)["meta"]
    assert selected["selected_val"] <= selected["init_val"]          # the start competes in the selection
    log = [json.loads(ln) for ln in (out / "meta" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [0, 1]
    assert main([*args[:-8], "--set", "train.iterations=3", *args[-8:], "--resume"]) == 0
    log = [json.loads(ln) for ln in (out / "meta" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [0, 1, 2]
    assert rule.kind == "adam-controller"


def test_the_hrnn_meta_trains_on_the_same_networks_and_joins_the_suite(tmp_path):
    out = tmp_path / "h"
    assert main(["meta-train", "lopt-suite", "--out", str(out), *COMMON, "--set", "rule=hrnn",
                 "--set", "train.estimator=bptt", "--set", "train.iterations=1", "--set", "train.val_every=1",
                 "--set", "train.truncation=10", "--set", "family.max_horizon=20", "--set", "family.min_horizon=20",
                 "--set", "family.heldout_objective=false", "--set", "val_tasks=1"]) == 0
    assert load_rule(out / "meta" / "best.pt").kind == "hrnn"
    suite = tmp_path / "s"
    assert main(["evaluate", "lopt-suite", "--checkpoint", str(out), "--out", str(suite), *COMMON, *SUITE]) == 0
    methods = {r["method"] for r in json.loads((suite / "results.json").read_text())["rows"]}
    assert {"default", "hrnn-trained"} <= methods


def test_hrnn_warm_start_takes_the_shipped_weights_and_this_runs_lr_dynamics(tmp_path):
    import learnt.pretrained
    from learnt.experiments.lopt_train import HRNNNetsConfig, LoptTrainConfig, build_rule
    shipped = learnt.pretrained.load("hrnn")
    rule = build_rule(LoptTrainConfig(rule="hrnn", hrnn=HRNNNetsConfig(warm_start="hrnn", max_rel_step=0.05)))
    for k, v in shipped.state_dict().items():
        assert torch.equal(rule.state_dict()[k], v), k
    cfg = rule.config()
    assert cfg["max_rel_step"] == 0.05 and cfg["lr_bound"] == 100.0
    assert cfg["max_log_lr"] == pytest.approx(math.log(0.1)) and shipped.config()["max_log_lr"] == 0.0
    cold = build_rule(LoptTrainConfig(rule="hrnn"))
    assert not torch.equal(cold.state_dict()["param_rnn.w_x"], rule.state_dict()["param_rnn.w_x"])
    assert cold.config()["max_rel_step"] == 0.03
    # a file works as well as a name; anything else is a one-line error naming the value
    save_rule(rule, tmp_path / "r.pt")
    again = build_rule(LoptTrainConfig(rule="hrnn", hrnn=HRNNNetsConfig(warm_start=str(tmp_path / "r.pt"))))
    assert torch.equal(again.state_dict()["param_rnn.w_x"], rule.state_dict()["param_rnn.w_x"])
    with pytest.raises(ValueError, match="warm_start='nope'"):
        build_rule(LoptTrainConfig(rule="hrnn", hrnn=HRNNNetsConfig(warm_start="nope")))
    with pytest.raises(ValueError, match="warm_start='default'.*HierarchicalRNN"):
        build_rule(LoptTrainConfig(rule="hrnn", hrnn=HRNNNetsConfig(warm_start="default")))
    with pytest.raises(ValueError, match="max_rel_step=-1"):
        HRNNNetsConfig(max_rel_step=-1.0)
