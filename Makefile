# Two commands set everything up on a fresh machine:
#   make demo   creates .venv, installs, runs the demo on the embedded default input
#   make test   creates .venv, installs, runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench help

help:
	@echo "make demo    - install into .venv and run the demo (outputs in demo_output/)"
	@echo "make test    - install into .venv and run the tests"
	@echo "make bench   - run benchmarks/latency.py on the tiny preset"
	@echo "make clean   - remove .venv and outputs"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 is pinned in setup.cfg; installing it first makes pip take the
# local CPU wheel rather than resolving several GB of CUDA packages.
$(STAMP): setup.cfg setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,sam2,onnx,video]"
	$(BIN)/python -m pip install --quiet --no-deps sam2==1.1.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mhr2 demo --output demo_output

# Two pytest-xdist workers: the suite waits on subprocesses, exports and I/O as much as on torch,
# so two processes on two cores take about 60% of the time of one. The Anny body model is built
# (or read from ~/.cache/anny) once first, so the workers do not both build it.
test: $(STAMP)
	$(BIN)/python -c "from mhr2_ros.body import BodyModel; BodyModel('makehuman')"
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/latency.py --preset tiny --people 5

clean:
	rm -rf $(VENV) demo_output mhr2_output *.egg-info
