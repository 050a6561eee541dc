"""Pure update rules in the (init, update) contract, hand-designed and shared helpers."""
from learnt.functional.base import Params, State, UpdateRule, apply_updates, check_finite, tree_detach
from learnt.functional.rules import (
    HAND_DESIGNED, SGD, Adam, AdamW, AddDecayedWeights, Chain, ClipByGlobalNorm, Momentum, RMSprop,
    adam, adamw, chain, make_rule, momentum, nag, rmsprop, sgd,
)

__all__ = [
    "Params", "State", "UpdateRule", "apply_updates", "check_finite", "tree_detach",
    "SGD", "Momentum", "RMSprop", "Adam", "AdamW", "Chain", "ClipByGlobalNorm", "AddDecayedWeights",
    "sgd", "momentum", "nag", "rmsprop", "adam", "adamw", "chain", "make_rule", "HAND_DESIGNED",
]
