# The two commands a newcomer needs: `make serve` and `make test`. Both set up what they need
# (a virtualenv with pinned dependencies, the JavaScript SDK for its tests) and are safe to rerun.
# `make check` is the gate before a commit lands: lint, format, strict types, the layer contract.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed
SIM_STAMP := tests/policy_sim/node_modules/.installed

.PHONY: serve test check bench mutate setup clean system-packages

# Debian packages (bubblewrap: the sandbox uploaded functions run in); installed when missing and
# root, else a loud failure with the command to run. Checked on every run: it takes milliseconds.
system-packages:
	@scripts/ensure-system-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --silent
	touch $(JS_STAMP)

$(SIM_STAMP): tests/policy_sim/package.json tests/policy_sim/package-lock.json
	cd tests/policy_sim && npm ci --no-audit --no-fund --silent
	touch $(SIM_STAMP)

setup: system-packages $(STAMP) $(JS_STAMP) $(SIM_STAMP)

serve: system-packages $(STAMP)
	$(BIN)/strongroom serve $(ARGS)

test: system-packages $(STAMP) $(JS_STAMP) $(SIM_STAMP)
	$(BIN)/python -m pytest $(ARGS)

# Lint (the rule set in pyproject's [tool.ruff.lint]), format, mypy --strict on src/ ([tool.mypy]),
# and the layer contract ([tool.importlinter], docs/design.md). Each tool runs even when an
# earlier one failed, so one run shows every finding; the target fails if any did.
check: $(STAMP)
	@status=0; \
	$(BIN)/ruff check src tests bench || status=1; \
	$(BIN)/ruff format --check src tests bench || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports --no-logo || status=1; \
	exit $$status

bench: $(STAMP)
	bench/run $(ARGS)

# Mutation testing of the trust-critical modules (docs/testing.md): slow, not part of CI. Run it
# before resolving an issue that touches them; `make mutate ARGS=sigv4` for one module
# (`ARGS=--list` names them). Niced: it keeps a core busy for the whole run.
mutate: $(STAMP)
	nice -n 15 $(BIN)/python scripts/mutate.py $(ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules tests/policy_sim/node_modules
