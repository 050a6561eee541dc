"""Wall time of one NAS controller batch with 1 vs 2 local worker processes (1 thread each).

A controller batch is ``batch_size`` children sampled by a fresh controller at ``layers``
layers, each trained with the ``nas-digits`` full-budget child config. Each backend's
workers are started (and have imported torch and the data) before timing; each batch is
timed ``repeats`` times (alternating backends, so slow phases of a shared machine hit both)
and the median is reported, with the in-process serial time and the machine's load average
for context. The children's accuracies must be identical across backends (same seeds).

    python benchmarks/nas_parallel.py [--batch-size 8] [--layers 4] [--repeats 3]
                                      [--out benchmarks/results/nas_parallel.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

from learnt.experiments.nas import config  # noqa: E402
from learnt.nas import ChildJob, Controller, LocalProcessBackend, SerialBackend, decode_tokens, train_child  # noqa: E402
from learnt.seeding import derive_seed, make_generator  # noqa: E402


def _cpu_pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "unavailable"


def _autogroup() -> str:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unavailable"


def timed_child(job: ChildJob) -> dict:
    """train_child plus when (wall clock) and in which process it ran."""
    start = time.time()
    out = train_child(job)
    return {**out, "start": start, "end": time.time(), "pid": os.getpid()}


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most children running at the same instant."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/nas_parallel.json")
    args = ap.parse_args()
    cfg = config("full")
    tokens, _, _ = Controller(cfg.space, seed=0)(args.batch_size, args.layers, make_generator(0, "train", 0, 1))
    jobs = [ChildJob(decode_tokens(cfg.space, t.tolist()), derive_seed(0, "train", 0, 2, k), cfg.child, ("val",),
                     key=(0, k)) for k, t in enumerate(tokens)]
    backends = {"serial (in process)": SerialBackend(), "local, 1 worker": LocalProcessBackend(1),
                "local, 2 workers": LocalProcessBackend(2)}
    for b in backends.values():
        if isinstance(b, LocalProcessBackend):
            b.warm_up()
    SerialBackend().map(train_child, jobs[:1])  # load the data in this process too
    times: dict[str, list[float]] = {k: [] for k in backends}
    busy: dict[str, list[float]] = {k: [] for k in backends}
    overlap: dict[str, int] = {}
    pids: dict[str, int] = {}
    accs: dict[str, list[float]] = {}
    load_before, pressure_before = os.getloadavg(), _cpu_pressure()
    for _ in range(args.repeats):
        for name, b in backends.items():
            t0 = time.perf_counter()
            outs = b.map(timed_child, jobs)
            times[name].append(time.perf_counter() - t0)
            accs[name] = [o.value["acc"]["val"] for o in outs]
            busy[name].append(sum(o.value["seconds"] for o in outs))
            overlap[name] = max_overlap([(o.value["start"], o.value["end"]) for o in outs])
            pids[name] = len({o.value["pid"] for o in outs})
    load_after, pressure_after = os.getloadavg(), _cpu_pressure()
    for b in backends.values():
        b.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    one, two = med["local, 1 worker"], med["local, 2 workers"]
    result = {
        "what": f"one controller batch: {args.batch_size} children at {args.layers} layers, child config "
                f"epochs={cfg.child.epochs} batch_size={cfg.child.batch_size}; median of {args.repeats} timings",
        "threads_per_worker": 1, "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpu_pressure_before": pressure_before, "cpu_pressure_after": pressure_after,
        "sched_autogroup_enabled": _autogroup(),
        "seconds": {k: round(v, 3) for k, v in med.items()},
        "all_seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "speedup_2_vs_1_worker": round(one / two, 3),
        "speedup_2_workers_vs_serial": round(med["serial (in process)"] / two, 3),
        "sum_of_child_seconds": {k: round(statistics.median(v), 3) for k, v in busy.items()},
        "max_children_running_at_once": overlap, "worker_processes_used": pids,
        "note": "sum_of_child_seconds is each child's own wall time, summed: if it grows with 2 workers, the "
                "two workers did not get two free cores (shared machine; with sched autogroup on, all processes of "
                "one session share that session's CPU slice, so extra workers only help when cores are idle)",
        "identical_accuracies_across_backends": len({tuple(v) for v in accs.values()}) == 1,
        "architectures": [j.arch.describe() for j in jobs],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("seconds", "speedup_2_vs_1_worker", "sum_of_child_seconds",
                                             "identical_accuracies_across_backends", "max_children_running_at_once",
                                             "load_average_before", "cpu_pressure_before")}, indent=2))


if __name__ == "__main__":
    main()
