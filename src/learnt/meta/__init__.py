"""Meta-training machinery shared by every learned optimizer: unroll, trainer, evaluation."""
from learnt.meta.estimators import PES, AntitheticES, TruncatedBPTT, make_estimator
from learnt.meta.evaluate import final_mean, lr_grid, run_on_split, tune_lr
from learnt.meta.loop import ResumableLoop
from learnt.meta.objectives import get_objective, mean_log_ratio, sum_of_losses
from learnt.meta.stats import mean_ci95, paired_wilcoxon_less
from learnt.meta.trainer import MetaTrainConfig, MetaTrainer, TrainResult
from learnt.meta.unroll import UnrollResult, unroll

__all__ = ["unroll", "UnrollResult", "MetaTrainer", "MetaTrainConfig", "TrainResult", "ResumableLoop", "TruncatedBPTT",
           "AntitheticES", "PES", "make_estimator",
           "run_on_split", "lr_grid", "tune_lr", "final_mean", "get_objective", "sum_of_losses",
           "mean_log_ratio", "mean_ci95", "paired_wilcoxon_less"]
