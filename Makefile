# kmsforensics: the commands the README promises. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE ?= datasets
PORT   ?= 8888

.PHONY: venv lab test lint typecheck chromium unit report notebooks bench bench-scale datasets rules-doc clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kmsforensics needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

lab: venv
	$(BIN)/jupyter lab notebooks/00_start_here.ipynb --port=$(PORT) \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root)

lint: venv
	$(BIN)/ruff check kmsforensics tests benchmarks tools
	$(BIN)/ruff format --check kmsforensics tests benchmarks tools

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest

# The real-browser tests need Debian's chromium (Playwright downloads no browser): installed
# here when missing and apt-get can (root); otherwise those tests say what to install.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "note: no chromium; the browser tests will fail until it is installed (apt-get install chromium)"

test: lint typecheck chromium unit

report: venv
	$(BIN)/kmsforensics report --template incident \
		--evidence datasets/incident-leaked-ci-key/evidence --out build/incident-report.html \
		--param case_id=sample-incident --param analyst=kmsforensics

notebooks: venv
	$(BIN)/python tools/refresh_notebooks.py

bench: venv
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_distinct.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_graph.py
	cd benchmarks && ../$(BIN)/python bench_detect.py

bench-scale: venv
	cd benchmarks && ../$(BIN)/python bench_scale.py

datasets: venv
	$(BIN)/python -c 'from pathlib import Path; from kmsforensics.synth.curated import CASES, build; [build(n, Path("datasets") / n) for n in CASES]'

rules-doc: venv
	$(BIN)/python -c 'from pathlib import Path; from kmsforensics.detections import catalogue; Path("docs/rules.md").write_text(catalogue.markdown())'

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
