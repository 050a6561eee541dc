"""Test helpers shipped with the package: child-training functions that fail on purpose.

They are top-level (picklable), so worker processes of every backend can run them.
"""
from __future__ import annotations

import os
from pathlib import Path

from learnt.nas.child import ChildJob, train_child


class FailingChild:
    """Train children normally, except: jobs whose ``key`` is in ``crash`` kill their worker
    process the first time (remembered by a marker file in ``marker_dir``), those in
    ``crash_always`` every time, and those in ``raise_on`` raise ``RuntimeError`` every time.
    With ``in_process=True`` a "crash" raises instead of killing the process."""

    def __init__(self, marker_dir: str | Path, crash: tuple = (), raise_on: tuple = (), crash_always: tuple = (),
                 in_process: bool = False) -> None:
        self.marker_dir = str(marker_dir)
        self.crash, self.raise_on, self.in_process = tuple(crash), tuple(raise_on), in_process
        self.crash_always = tuple(crash_always)

    def __call__(self, job: ChildJob) -> dict:
        if job.key in self.raise_on:
            raise RuntimeError(f"injected failure for child {job.key}")
        if job.key in self.crash or job.key in self.crash_always:
            Path(self.marker_dir).mkdir(parents=True, exist_ok=True)
            marker = Path(self.marker_dir) / ("crashed-" + "-".join(map(str, job.key)))
            if job.key in self.crash_always or not marker.exists():
                marker.touch()
                if self.in_process:
                    raise RuntimeError(f"injected crash for child {job.key}")
                os._exit(3)  # a dead worker, as a segfault or an OOM kill would leave it
        return train_child(job)
