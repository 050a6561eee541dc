"""Neural architecture search with an RL controller (Zoph & Le 2017), scaled to 8x8 digits.

Search space as data (:mod:`~learnt.nas.space`), child networks (:mod:`~learnt.nas.child`),
the LSTM controller (:mod:`~learnt.nas.controller`), the REINFORCE / random-search loop with
checkpoints (:mod:`~learnt.nas.search`), parallel backends (:mod:`~learnt.nas.backends`),
retraining on the test split (:mod:`~learnt.nas.retrain`) and rendering
(:mod:`~learnt.nas.render`).
"""
from learnt.nas.backends import Backend, LocalProcessBackend, Outcome, RayBackend, SerialBackend, make_backend
from learnt.nas.child import ChildConfig, ChildJob, ChildNet, train_child
from learnt.nas.controller import Controller, UniformPolicy
from learnt.nas.render import render_architecture
from learnt.nas.retrain import Retrained, retrain, select
from learnt.nas.search import ArchitectureSearch, SearchConfig, top_distinct
from learnt.nas.space import Architecture, Layer, SearchSpace, decode_tokens, encode_architecture

__all__ = ["Architecture", "ArchitectureSearch", "Backend", "ChildConfig", "ChildJob", "ChildNet", "Controller",
           "Layer", "LocalProcessBackend", "Outcome", "RayBackend", "Retrained", "SearchConfig", "SearchSpace",
           "SerialBackend", "UniformPolicy", "decode_tokens", "encode_architecture", "make_backend",
           "render_architecture", "retrain", "select", "top_distinct", "train_child"]
