"""The ``learnt`` command: list, reproduce, meta-train and evaluate experiments."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from learnt.config import override
from learnt.errors import LearntError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="experiment name (see `learnt list`)")
    p.add_argument("--quick", action="store_true", help="small budget (minutes on 2 CPU cores)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default runs/NAME[-quick])")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.meta_lr=0.003 (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="learnt", description="Learning to learn in PyTorch.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments and pretrained rules")
    p = sub.add_parser("table", help="print the rows of a results.json as a table")
    p.add_argument("results", type=Path, help="a results.json written by `learnt reproduce`")
    p.add_argument("--markdown", action="store_true", help="Markdown instead of plain text")
    p = sub.add_parser("reproduce", help="meta-train, evaluate against tuned baselines, write results.json + plots")
    _common(p)
    p.add_argument("--resume", action="store_true", help="continue meta-training from the checkpoints under OUT (e.g. OUT/meta/checkpoint.pt)")
    p = sub.add_parser("meta-train", help="meta-train the experiment's learned model(s) into OUT (e.g. OUT/meta/best.pt)")
    _common(p)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints under OUT")
    p = sub.add_parser("evaluate", help="evaluate a trained rule against tuned baselines")
    _common(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="a trained file or run folder (e.g. OUT/meta/best.pt, or OUT for experiments with several models)")
    src.add_argument("--pretrained", action="store_true", help="use the model(s) shipped with learnt")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return _run(args)
    except (LearntError, ValueError, FileNotFoundError) as e:
        # bad input: one line naming the value (with -v, the traceback too); any other
        # exception is an internal bug and keeps its traceback
        if args.verbose:
            import traceback
            traceback.print_exc()
        print(f"learnt: error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from learnt import experiments, pretrained
    from learnt.experiments.base import RunContext, resolve_device, run_experiment, with_device
    from learnt.experiments.results import format_table

    if args.command == "list":
        print("experiments:")
        for name, e in sorted(experiments.EXPERIMENTS.items()):
            print(f"  {name:<22} {e.description}")
        print("pretrained rules:", ", ".join(pretrained.available()) or "(none)")
        return 0

    if args.command == "table":
        import json
        from learnt.experiments.results import markdown_table
        if not args.results.is_file():
            raise ValueError(f"results file {str(args.results)!r} does not exist; expected OUT/results.json")
        try:
            rows = json.loads(args.results.read_text())["rows"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{str(args.results)!r} is not a learnt results.json (no rows)") from None
        for i, r in enumerate(rows):
            missing = [k for k in ("method", "setting", "metric", "mean", "n") if not isinstance(r, dict) or k not in r]
            if missing:
                raise ValueError(f"{str(args.results)!r}: row {i} lacks {missing}; expected rows with "
                                 "method, setting, metric, mean, ci95, n")
        print(markdown_table(rows) if args.markdown else format_table(rows))
        return 0

    exp = experiments.get(args.name)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads {args.threads}: expected >= 1")
        torch.set_num_threads(args.threads)
    budget = "quick" if args.quick else "full"
    device = resolve_device(args.device)
    cfg = override(with_device(exp.config(budget), device), args.overrides)
    if args.show_config:
        from learnt.config import to_dict
        import json
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    out = args.out or Path("runs") / (exp.name + ("-quick" if args.quick else ""))
    ctx = RunContext(out=out, seed=args.seed, device=device, budget=budget, progress=not args.no_progress,
                     resume=getattr(args, "resume", False))
    if args.command == "meta-train":
        from learnt.seeding import seed_everything
        seed_everything(ctx.seed)
        exp.meta_train(cfg, ctx)
        print(f"meta-training done; checkpoints and best weights under {out}")
        return 0
    trained = None
    if args.command == "evaluate":
        if args.pretrained:
            trained = exp.load_pretrained(cfg) if exp.load_pretrained else pretrained.load(exp.name, device)
        else:
            trained = exp.load_trained(cfg, str(args.checkpoint))
    results = run_experiment(exp, cfg, ctx, trained=trained)
    if results.get("rank", 0) != 0:   # torchrun: rank 0 alone reports
        return 0
    print(format_table(results["rows"]))
    print(f"\nresults: {out / 'results.json'}  ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
