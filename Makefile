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
	@echo "installing gpuwatch and its pinned dependencies into $(VENV) (a few minutes on a first run)"
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: install
	$(BIN)/gpuwatch demo

test: install
	@sh infra/alertmanager/install.sh || { [ "$$CI" = true ] && { echo "prometheus-alertmanager missing and CI=true: failing instead of skipping its tests"; exit 1; }; echo "prometheus-alertmanager missing: its tests are skipped"; }
	@sh infra/prometheus/install.sh || { [ "$$CI" = true ] && { echo "prometheus missing and CI=true: failing instead of skipping its tests"; exit 1; }; echo "prometheus missing: the agent's /metrics scrape test is skipped"; }
	$(BIN)/python -m pytest -q -ra

bench: install
	@sh infra/prometheus/install.sh || echo "prometheus missing: bench/alert_latency.py has no reference to compare with"
	$(BIN)/python -m pip install -q -e '.[bench]'
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

kafka-start: install
	$(BIN)/gpuwatch kafka start

kafka-stop: install
	$(BIN)/gpuwatch kafka stop

clean:
	rm -rf $(VENV) var

# The console's browser test (tests/console/) needs headless Chromium, a Debian package: `make test` installs it.
.PHONY: browser
test: browser
browser:
	@sh infra/console/install-chromium.sh || { [ "$$CI" = true ] && { echo "chromium missing and CI=true: failing instead of skipping its tests"; exit 1; }; echo "chromium missing: the console's browser test is skipped"; }
