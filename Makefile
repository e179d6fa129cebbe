# glmmteach: everything a student or CI needs, with no root and no prior setup.
#   make test   install into .venv (once), then the unit tests and nbval on the executed lessons
#   make book   install into .venv (once), then execute the lessons and build the site into _build/html
#   make clean  remove what the targets above made (the virtual environment too)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Written after a successful install; it is older than pyproject.toml when the dependencies changed.
STAMP  := $(VENV)/.installed

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1
# Do not set MPLBACKEND here: the Jupyter kernel would inherit it instead of its inline backend, and the
# lessons' figures would vanish from the book and from nbval's comparison.

# The lessons (and homework) that nbval checks: every stored, executed notebook under lessons/.
NOTEBOOKS := $(shell find lessons -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null)
NBVAL     := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: install test book homework clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $@

# One pytest run, so its closing line counts every test. pytest's exit code 5 ("no tests collected")
# is not a failure here.
test: $(STAMP)
	$(BIN)/python -m pytest tests $(if $(NOTEBOOKS),$(NBVAL) lessons) || [ $$? -eq 5 ]

# The lessons are executed first, on every core, into the cache that the build reads (_ext/execute_parallel.py).
book: $(STAMP)
	$(BIN)/python _ext/execute_parallel.py
	$(BIN)/jupyter-book build . --all --warningiserror --keep-going

# The homework (lessons/homework/, otter-grader): student notebooks and autograders into _build/homework/.
# Grade a submitted notebook: $(BIN)/python lessons/homework/homework.py grade NOTEBOOK
homework: $(STAMP)
	$(BIN)/python lessons/homework/homework.py build

clean:
	rm -rf _build $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
