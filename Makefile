# Two entry points for a fresh machine with Python 3.11, Java 17 and Maven:
#   make demo   - the whole pipeline end to end
#   make test   - the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test bench kafka-start kafka-stop clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: install
	$(BIN)/gpuwatch demo

test: install
	@sh infra/alertmanager/install.sh || echo "prometheus-alertmanager missing: its tests are skipped"
	$(BIN)/python -m pytest -q -ra

bench: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

kafka-start: install
	$(BIN)/gpuwatch kafka start

kafka-stop: install
	$(BIN)/gpuwatch kafka stop

clean:
	rm -rf $(VENV) var
