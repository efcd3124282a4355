# Every target that needs Python runs `setup` first, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help setup grade test train play exercises notebooks lab bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## Create .venv and install the pinned dependencies

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

grade: setup  ## Grade your work in exercises/ (pass options with ARGS="--lesson 03")
	$(PY) grader.py $(ARGS)

test: setup  ## Run the whole suite against the reference, the catalogue of wrong implementations and the stub checks
	$(PY) -m pytest --impl solutions

train: setup  ## Train your model (pass options with ARGS="--impl solutions --size medium --plots plots")
	$(PY) train.py $(ARGS)

play: setup  ## Ask the trained model questions such as Max ( 5 3 9 ) (ARGS="--checkpoint FILE")
	$(PY) play.py $(ARGS)

exercises: setup  ## Regenerate exercises/ from solutions/, the lesson tables from manifest.toml and the notebooks
	$(PY) -m kata.authoring.stubs
	$(PY) -m kata.authoring.docs
	$(PY) -m kata.authoring.notebooks

notebooks: setup  ## Regenerate the lesson notebooks in notebooks/ from the lesson texts
	$(PY) -m kata.authoring.notebooks
	$(PY) -m kata.authoring.docs

lab: setup  ## Open JupyterLab at the repository's root (LESSON=02 opens that lesson's notebook; ARGS="--port 8899")
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lab.txt
	$(PY) -m ipykernel install --sys-prefix --name transformer-kata --display-name "Transformer kata (.venv)"
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(ARGS) $(if $(LESSON),$(or $(wildcard notebooks/$(LESSON)_*.ipynb),$(error LESSON=$(LESSON): no notebooks/$(LESSON)_*.ipynb; give a lesson number such as 02)))

bench: setup  ## Train the reference on seeds 0-4 and print accuracy and speed (PyTorch side by side if installed)
	$(PY) -m benchmarks.train_benchmark

clean:  ## Remove .venv and caches
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
