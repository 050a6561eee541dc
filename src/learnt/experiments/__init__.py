"""Named paper reproductions: config -> run -> results.json + plots."""
from learnt.errors import NotFoundError
from learnt.experiments.blackbox import BLACKBOX_BENCHMARKS, BLACKBOX_GP, BLACKBOX_HPO
from learnt.experiments.blackbox_hpolib import BLACKBOX_HPOLIB
from learnt.experiments.base import Experiment, RunContext, resolve_device, run_experiment
from learnt.experiments.fewshot import FEWSHOT_GLYPHS, FEWSHOT_SINUSOID
from learnt.experiments.hrnn import HRNN_ENSEMBLE, HRNN_GENERALIZATION, HRNN_LR_ROBUSTNESS
from learnt.experiments.imitation import IMITATION_BLOCKS, IMITATION_PARTICLE
from learnt.experiments.l2l_mlp import L2L_CONV, L2L_GENERALIZATION, L2L_MLP
from learnt.experiments.l2l_quadratic import EXPERIMENT as _L2L_QUADRATIC
from learnt.experiments.lopt_suite import LOPT_SUITE
from learnt.experiments.nas import NAS_DIGITS, NAS_GLYPHS
from learnt.experiments.nas_bench201 import NAS_BENCH201
from learnt.experiments.pes import L2L_QUADRATIC_PES

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    _L2L_QUADRATIC, L2L_MLP, L2L_GENERALIZATION, L2L_CONV, HRNN_ENSEMBLE, HRNN_GENERALIZATION, HRNN_LR_ROBUSTNESS,
    L2L_QUADRATIC_PES, BLACKBOX_GP, BLACKBOX_BENCHMARKS, BLACKBOX_HPO, BLACKBOX_HPOLIB, IMITATION_PARTICLE, IMITATION_BLOCKS,
    FEWSHOT_GLYPHS, FEWSHOT_SINUSOID, NAS_DIGITS, NAS_GLYPHS, NAS_BENCH201, LOPT_SUITE)}


def get(name: str) -> Experiment:
    """Look up an experiment by name; unknown names list the known ones."""
    if name not in EXPERIMENTS:
        raise NotFoundError(f"unknown experiment {name!r}; expected one of {sorted(EXPERIMENTS)} (see `learnt list`)")
    return EXPERIMENTS[name]


__all__ = ["EXPERIMENTS", "Experiment", "RunContext", "get", "resolve_device", "run_experiment"]
