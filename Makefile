# Two commands set everything up: `make demo` and `make test`.
# torch is installed first and pinned, so that pip never resolves a multi-GB CUDA build.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export MUJOCO_GL ?= disable

.PHONY: install test test-slow demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,dmc,sweep]'
	touch $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	$(VENV)/bin/dreamscope demo

bench: $(STAMP)
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/env_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info
