# Finds Python 3.12, the Lambda runtime's version, for every Makefile of the repository (the root
# one, the layer's and the functions'), so that `make` and a bare `sam build` pick the same one:
# the one on PATH first (Homebrew, asdf, a virtualenv...), then uv's and pyenv's, then the
# usual places. Each candidate must run and report 3.12: a pyenv shim for a version that is not
# selected exists on PATH but fails. Empty when none is found.
PYTHON_VERSION := 3.12
PYTHON_CANDIDATES := python$(PYTHON_VERSION) python3 \
	$$(uv python find $(PYTHON_VERSION) 2>/dev/null) \
	$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}")/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION) \
	/opt/homebrew/bin/python$(PYTHON_VERSION) /usr/local/bin/python$(PYTHON_VERSION) /usr/bin/python$(PYTHON_VERSION)
FOUND_PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	p="$$(command -v "$$p" 2>/dev/null)" || continue; \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null \
	&& echo "$$p" && break; done)
PYTHON_HINT := install Python $(PYTHON_VERSION) (brew install python@$(PYTHON_VERSION), uv python install $(PYTHON_VERSION), \
pyenv install $(PYTHON_VERSION), or apt-get install python$(PYTHON_VERSION)) or put it on PATH
