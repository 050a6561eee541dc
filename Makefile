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
# backend in tests/nas/test_backends.py (make demo does not need it)
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,bench,ray]'
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
