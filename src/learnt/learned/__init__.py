"""Learned optimizers: ``nn.Module``s holding phi that satisfy the update-rule contract."""
from learnt.learned.adam_controller import AdamController
from learnt.learned.hrnn import HierarchicalRNN
from learnt.learned.lstm import CoordinateLSTM, L2LOptimizer
from learnt.learned.partitioned import PartitionedRule
from learnt.learned.preprocess import log_sign

LEARNED_RULES = {L2LOptimizer.kind: L2LOptimizer, PartitionedRule.kind: PartitionedRule,
                 HierarchicalRNN.kind: HierarchicalRNN, AdamController.kind: AdamController}

__all__ = ["AdamController", "CoordinateLSTM", "HierarchicalRNN", "L2LOptimizer", "PartitionedRule", "log_sign", "LEARNED_RULES"]

from learnt.learned.serialization import load_rule, save_rule  # noqa: E402

__all__ += ["load_rule", "save_rule"]
