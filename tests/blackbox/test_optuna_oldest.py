"""LearnedSampler under the oldest Optuna the package declares (pyproject: optuna>=3.6).

``make test`` installs that Optuna, without dependencies, into ``.venv/optuna-oldest``; this
test reruns the sampler's behaviour tests in a subprocess with it first on the path. Without
that folder it fails (it is part of the test contract, not optional)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OLDEST = ROOT / ".venv" / "optuna-oldest"


def _declared_floor() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'"optuna>=([0-9.]+)"', text).group(1)


def test_sampler_tests_pass_under_the_oldest_supported_optuna():
    assert OLDEST.is_dir(), f"{OLDEST} is missing; `make test` installs optuna=={_declared_floor()} there"
    path = [str(OLDEST)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    version = subprocess.run([sys.executable, "-c", "import optuna; print(optuna.__version__)"], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
    from packaging.version import Version
    assert Version(version) == Version(_declared_floor()), (version, _declared_floor())
    r = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", "-x",
                        str(ROOT / "tests" / "blackbox" / "test_sampler.py"), str(ROOT / "tests" / "test_set_proposer.py")],
                       env=env, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"\b\d+ passed", r.stdout) and "failed" not in r.stdout
