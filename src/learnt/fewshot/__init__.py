"""Few-shot learning: episodes, the Hershey glyph set, real-data loaders, the LSTM
meta-learner of Ravi & Larochelle (2017) and its baselines (MAML, ProtoNets, pre-trained
nearest neighbour and fine-tuning)."""
from learnt.fewshot.api import (AdaptedClassifier, FewShotLearner, build_method, load_method, load_pretrained,
                                pretrained_names, save_method)
from learnt.fewshot.baselines import MAML, FineTune, NearestNeighbour, Pretrained, ProtoNet
from learnt.fewshot.episodes import ClassSplit, Episode, EpisodeSampler
from learnt.fewshot.glyphs import GlyphConfig, load_glyphs
from learnt.fewshot.learner import ConvLearner, FlatParams, SineMLP
from learnt.fewshot.loaders import load_miniimagenet, load_omniglot
from learnt.fewshot.metalearner import MetaLearnerLSTM
from learnt.fewshot.methods import Method, task_loss, task_score
from learnt.fewshot.sinusoid import SinusoidEpisodes
from learnt.fewshot.training import EpisodicTrainConfig, EpisodicTrainer, evaluate_method

__all__ = ["AdaptedClassifier", "ClassSplit", "ConvLearner", "Episode", "EpisodeSampler", "EpisodicTrainConfig",
           "EpisodicTrainer", "FewShotLearner", "FineTune", "FlatParams", "GlyphConfig", "MAML", "Method",
           "MetaLearnerLSTM", "NearestNeighbour", "Pretrained", "ProtoNet", "SineMLP", "SinusoidEpisodes",
           "build_method", "evaluate_method", "load_glyphs", "load_method", "load_miniimagenet", "load_omniglot",
           "load_pretrained", "pretrained_names", "save_method", "task_loss", "task_score"]
