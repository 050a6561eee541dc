"""LearnedSampler through Optuna's public API: a mixed search space (float, log float, int, categorical)
and two samplers sharing one storage. Run by tools/check_oldest_optuna.sh under the oldest Optuna
the package claims (pyproject: optuna>=3.6) and the pinned one; both must print the same numbers."""
import optuna, math
from learnt.blackbox import LearnedSampler
optuna.logging.set_verbosity(optuna.logging.ERROR)
def obj(t):
    x = t.suggest_float("x", -3, 3); y = t.suggest_float("lr", 1e-4, 1, log=True)
    n = t.suggest_int("n", 1, 9); c = t.suggest_categorical("c", ["a", "b"])
    return (x - 1) ** 2 + (math.log10(y) + 2) ** 2 + (n - 4) ** 2 / 10 + (c == "b")
s = optuna.create_study(sampler=LearnedSampler(seed=0)); s.optimize(obj, n_trials=25)
print(optuna.__version__, "best", round(s.best_value, 3), len(s.trials))
st = optuna.storages.InMemoryStorage()
s1 = optuna.create_study(storage=st, study_name="w", sampler=LearnedSampler(seed=1))
s2 = optuna.load_study(storage=st, study_name="w", sampler=LearnedSampler(seed=2))
for _ in range(5): s1.optimize(obj, n_trials=2); s2.optimize(obj, n_trials=2)
print("shared storage trials", len(s1.trials))
