# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# torch is installed first and pinned, so pip does not pull a CUDA build where a CPU wheel is
# wanted; override with `make test TORCH=torch` on a GPU machine.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
OUT    ?= results/demo

.PHONY: demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,scvi,celltypist,ray]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/cellshift demo --out $(OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/tokenizing.py
	$(PY) benchmarks/distances.py

clean:
	rm -rf $(VENV) results .pytest_cache
