# sciml-toolbox: every target installs what it needs into $(VENV) first.
#
#   make demo      the tour of every implemented method (figures + demo_output/index.html)
#   make test      ruff, a quick docs build (one example executed), pytest (not slow)
#   make test-all  the same with the slow tests
#   make doc       the full documentation, every example executed, warnings as errors
#   make bench     every benchmark in quick mode
#   make test-min  the quick tests against the lowest supported versions of the core
#                  dependencies, in a separate environment ($(VENV_MIN)); not part of `make test`
#
# torch is installed first from TORCH_SPEC, which defaults to the CPU build, so that nothing
# pulls a multi-GB CUDA wheel by accident. With a GPU, for example:
#   make test TORCH_SPEC=torch TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"

PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
PIP_FLAGS   ?= -q
WORKERS     ?= 2
DEMO_OUT    ?= demo_output

VENV_MIN    ?= .venv-min
# the core tests: no MNE, diffusers or transformers (their extras are not pinned low)
MIN_TESTS   ?= tests/test_array_api.py tests/test_validation.py tests/stiefel tests/bilevel \
               tests/scaling tests/dynamics tests/multiview/test_multiview_api.py \
               tests/multiview/test_multiview_reference.py

BIN := $(VENV)/bin
PY  := $(BIN)/python
DEMO_EXTRAS := torch,meg,diffusion
TEST_EXTRAS := torch,meg,diffusion,docs,test
SPHINXOPTS  ?= -W --keep-going -q
# serialise concurrent docs builds in one checkout (they share doc/auto_examples)
LOCK := $(if $(shell command -v flock),flock doc/.build.lock,)

.PHONY: demo test test-all test-min doc doc-quick bench lint pytest clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip

$(VENV)/.torch-installed: | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) $(TORCH_INDEX) "$(TORCH_SPEC)"
	@touch $@

$(VENV)/.demo-installed: pyproject.toml $(VENV)/.torch-installed
	$(PY) -m pip install $(PIP_FLAGS) -e ".[$(DEMO_EXTRAS)]"
	@touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.torch-installed
	$(PY) -m pip install $(PIP_FLAGS) -e ".[$(TEST_EXTRAS)]"
	@touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/sciml-toolbox demo --out $(DEMO_OUT)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check sciml_toolbox tests examples benchmarks doc/conf.py

doc-quick: $(VENV)/.test-installed
	SPHINX_GALLERY_PATTERN="$${SPHINX_GALLERY_PATTERN:-plot_foundation_}" $(LOCK) \
	  sh -c 'rm -rf doc/_build/html doc/auto_examples doc/generated && \
	  $(BIN)/sphinx-build $(SPHINXOPTS) -b html doc doc/_build/html' 
	@echo "docs (quick mode) built in doc/_build/html"

doc: $(VENV)/.test-installed
	$(LOCK) sh -c 'rm -rf doc/_build/html doc/auto_examples doc/generated && \
	  $(BIN)/sphinx-build $(SPHINXOPTS) -b html doc doc/_build/html' 
	@echo "docs built in doc/_build/html/index.html"

pytest: $(VENV)/.test-installed
	$(BIN)/pytest -n $(WORKERS) -m "not slow"

test: lint doc-quick pytest

test-all: $(VENV)/.test-installed lint doc-quick
	$(BIN)/pytest -n $(WORKERS)

# Lowest versions: every `name>=X` of the core dependencies is installed as `name==X`
# (read from pyproject.toml by .ci/lowest_requirements.py), then torch and the test tools.
test-min:
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_MIN)/bin/python -m pip install $(PIP_FLAGS) $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PYTHON) .ci/lowest_requirements.py pyproject.toml > $(VENV_MIN)/lowest.txt
	$(VENV_MIN)/bin/python -m pip install $(PIP_FLAGS) -r $(VENV_MIN)/lowest.txt
	$(VENV_MIN)/bin/python -m pip install $(PIP_FLAGS) --no-deps -e .
	$(VENV_MIN)/bin/python -m pip install $(PIP_FLAGS) -c $(VENV_MIN)/lowest.txt pytest \
	  pytest-xdist hypothesis array-api-strict pandas
	$(VENV_MIN)/bin/python -m pip list 2>/dev/null | grep -iE "^(numpy|scipy|scikit-learn|array.api.compat|matplotlib|tqdm|torch) "
	$(VENV_MIN)/bin/pytest -n $(WORKERS) -m "not slow" -p no:cacheprovider $(MIN_TESTS)

bench: $(VENV)/.demo-installed
	$(BIN)/sciml-toolbox bench

clean:
	rm -rf doc/_build doc/auto_examples doc/generated $(DEMO_OUT) .pytest_cache .ruff_cache \
	  $(VENV_MIN)
