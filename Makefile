# The two commands a newcomer needs: `make serve` and `make test`. Both set up what they need
# (a virtualenv with pinned dependencies, the JavaScript SDK for its tests) and are safe to rerun.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := tests/js/node_modules/.installed
SIM_STAMP := tests/policy_sim/node_modules/.installed

.PHONY: serve test bench setup clean system-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --silent
	touch $(JS_STAMP)

$(SIM_STAMP): tests/policy_sim/package.json tests/policy_sim/package-lock.json
	cd tests/policy_sim && npm ci --no-audit --no-fund --silent
	touch $(SIM_STAMP)

# Debian packages the tests need (scripts/system-packages: SoftHSM2 for the PKCS#11 master key).
system-packages:
	scripts/ensure-system-packages

setup: system-packages $(STAMP) $(JS_STAMP) $(SIM_STAMP)

serve: $(STAMP)
	$(BIN)/strongroom serve $(ARGS)

test: system-packages $(STAMP) $(JS_STAMP) $(SIM_STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	bench/run $(ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules tests/policy_sim/node_modules
