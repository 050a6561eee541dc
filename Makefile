PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench]'
	touch $(STAMP)

# make test also installs the ray extra: the NAS search runs through a real two-worker Ray
# backend in tests/nas/test_backends.py (make demo does not need it); and the oldest Optuna
# the package declares, on its own, for tests/blackbox/test_optuna_oldest.py
OPTUNA_OLDEST := $(shell sed -n 's/.*"optuna>=\([0-9.]*\)".*/\1/p' pyproject.toml)
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench,ray]'
	$(BIN)/pip install -q --no-deps --upgrade --target $(VENV)/optuna-oldest 'optuna==$(OPTUNA_OLDEST)'
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/learnt reproduce l2l-quadratic --quick --threads 1 --out runs/demo
	$(BIN)/learnt evaluate lopt-suite --pretrained --quick --threads 1 --out runs/demo-lopt

test: $(TEST_STAMP)
	$(BIN)/python -m pytest tests

bench: $(STAMP)
	$(BIN)/python benchmarks/l2l_speed.py
	$(BIN)/python benchmarks/lopt_speed.py

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info
